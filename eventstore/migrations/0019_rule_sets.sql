-- Rule documents stored once, by digest (`domain.rulesets`): the deadline rule sets, working calendars, body
-- registries, routing tables and report calendars cases are counted under. A case's first event names its
-- documents by the SHA-256 of their canonical content (`rules_ref`) instead of holding them. A row is written
-- once (INSERT .. ON CONFLICT DO NOTHING: the same digest is the same content) and never changed: UPDATE,
-- DELETE and TRUNCATE are refused. A row changed all the same (the triggers disabled) no longer hashes to its
-- digest, which `danvan verify` reports and the fetch refuses.
CREATE TABLE rule_sets (
    digest      text PRIMARY KEY CHECK (digest ~ '^[0-9a-f]{64}$'),
    kind        text NOT NULL CHECK (kind IN ('policy', 'calendar', 'bodies', 'routing', 'reports')),
    content     jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION danvan_rule_sets_immutable() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    RAISE EXCEPTION 'rule_sets is append-only: % refused', TG_OP USING ERRCODE = 'DV004';
END
$fn$;

CREATE TRIGGER rule_sets_no_update BEFORE UPDATE OR DELETE ON rule_sets
    FOR EACH ROW EXECUTE FUNCTION danvan_rule_sets_immutable();
CREATE TRIGGER rule_sets_no_truncate BEFORE TRUNCATE ON rule_sets
    FOR EACH STATEMENT EXECUTE FUNCTION danvan_rule_sets_immutable();

-- A case is not found by the digests its first event names its rules by, as it was not by the rules in full.
CREATE OR REPLACE FUNCTION danvan_search_text(p_stream_id text, p_data jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT danvan_fold(p_stream_id || ' ' || coalesce(
       (SELECT string_agg(v #>> '{}', ' ')
          FROM jsonb_path_query((p_data #- '{intake,petitioner}') - 'rules' - 'rules_ref' - 'deadlines',
                                'strict $.**') AS v
         WHERE jsonb_typeof(v) = 'string'), '')) $$;
