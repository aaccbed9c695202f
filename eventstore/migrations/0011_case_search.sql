-- Text search over cases, insensitive to letter case and to diacritics: "nam sach" finds "Nam Sách", "dong"
-- finds "Đồng". `unaccent` folds the diacritics (đ to d included) and `pg_trgm` indexes the folded text so that
-- a word anywhere in it is found without reading every case. Both are trusted extensions (PostgreSQL 13 and
-- later): the database's owner may create them.
CREATE EXTENSION IF NOT EXISTS unaccent;
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- `unaccent` is only STABLE (its dictionary could be changed); naming the dictionary makes the folding fixed,
-- which an index needs. Text is stored in NFC, so a letter and its marks are one character here.
CREATE FUNCTION danvan_fold(p_text text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS
$$ SELECT lower(public.unaccent('public.unaccent'::regdictionary, p_text)) $$;

-- A word of a query as a LIKE pattern matching it anywhere: folded, its own `%`, `_` and `\` taken literally.
CREATE FUNCTION danvan_contains(p_word text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS
$$ SELECT '%' || replace(replace(replace(danvan_fold(p_word), '\', '\\'), '%', '\%'), '_', '\_') || '%' $$;

-- What a case is found by: its id and the text of its first event (a petition's subject, content, references,
-- district and commune; a plan task's title and text), without the rules and deadlines it recorded and without
-- its petitioner (sealed since intake, but a case received before sealing held one in clear). Written once, when
-- the first event is stored; a case's first event never changes.
CREATE TABLE case_search (
    case_id  text PRIMARY KEY,
    folded   text NOT NULL
);
CREATE INDEX case_search_trgm_idx ON case_search USING gin (folded gin_trgm_ops);

CREATE FUNCTION danvan_search_text(p_stream_id text, p_data jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT danvan_fold(p_stream_id || ' ' || coalesce(
       (SELECT string_agg(v #>> '{}', ' ')
          FROM jsonb_path_query((p_data #- '{intake,petitioner}') - 'rules' - 'deadlines', 'strict $.**') AS v
         WHERE jsonb_typeof(v) = 'string'), '')) $$;

CREATE FUNCTION danvan_index_case() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO case_search (case_id, folded)
    VALUES (NEW.stream_id, danvan_search_text(NEW.stream_id, NEW.data))
    ON CONFLICT (case_id) DO NOTHING;
    RETURN NULL;
END
$fn$;

CREATE TRIGGER events_index_case AFTER INSERT ON events
    FOR EACH ROW WHEN (NEW.version = 1) EXECUTE FUNCTION danvan_index_case();

INSERT INTO case_search (case_id, folded)
SELECT stream_id, danvan_search_text(stream_id, data) FROM events WHERE version = 1
ON CONFLICT (case_id) DO NOTHING;
