-- The event store: one row per stream (its version and the head of its hash chain), one row per event,
-- the `cases` read model, and the append function that writes all three in one statement.

CREATE TABLE streams (
    stream_id   text PRIMARY KEY,
    version     integer NOT NULL CHECK (version >= 0),
    last_hash   bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE events (
    -- Position in the global feed. Positions are handed out at insert, not at commit, so a reader must
    -- not page on it alone: see tx_id and eventstore.store.EventStore.read_feed.
    position        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The writing transaction (assigned before commit). The feed is ordered by (tx_id, position) and
    -- only read below the oldest transaction still running, so a late commit is never skipped.
    tx_id           xid8 NOT NULL DEFAULT pg_current_xact_id(),
    stream_id       text NOT NULL,
    version         integer NOT NULL CHECK (version > 0),
    event_id        uuid NOT NULL,
    type            text NOT NULL,
    schema_version  integer NOT NULL,
    occurred_at     timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    actor           text,
    reason          text,
    legal_basis     text,
    data            jsonb NOT NULL,
    metadata        jsonb NOT NULL,
    prev_hash       bytea NOT NULL,
    hash            bytea NOT NULL,
    CONSTRAINT events_event_id_key UNIQUE (event_id),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, version)
);

CREATE INDEX events_feed_idx ON events (tx_id, position);

-- The read model of a case, written in the same transaction as the case's events.
CREATE TABLE cases (
    case_id       text PRIMARY KEY,
    kind          text NOT NULL,
    status        text NOT NULL,
    title         text,
    lead_body     text,
    bodies        text[] NOT NULL DEFAULT '{}',
    district      text,
    commune       text,
    source        text,
    external_ref  text,
    received_at   timestamptz,
    due_at        timestamptz,
    overdue       boolean NOT NULL DEFAULT false,
    version       integer NOT NULL,
    summary       jsonb NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX cases_kind_status_idx ON cases (kind, status);
CREATE INDEX cases_lead_body_idx ON cases (lead_body);
CREATE INDEX cases_district_idx ON cases (district);
CREATE INDEX cases_due_idx ON cases (due_at) WHERE NOT overdue;
CREATE INDEX cases_overdue_idx ON cases (overdue) WHERE overdue;
CREATE INDEX cases_bodies_idx ON cases USING gin (bodies);
CREATE INDEX cases_source_ref_idx ON cases (source, external_ref);

-- Append events to a stream in one round trip.
--   p_events: the canonical JSON text of each event (see eventstore/canonical.py); the hash is taken over
--             exactly that text, chained to the stream's previous hash.
--   p_case:   the new `cases` row as JSON, or NULL.
-- Errors: DV001 the stream is not at p_expected; DV002 an event id is stored with other content;
--         DV003 a malformed request. A retry of an append that already succeeded returns duplicate = true.
CREATE FUNCTION danvan_append(p_stream_id text, p_expected integer, p_events text[], p_case jsonb)
RETURNS TABLE (out_version integer, out_duplicate boolean)
LANGUAGE plpgsql AS $fn$
DECLARE
    v_version   integer;
    v_hash      bytea;
    v_prev      bytea;
    v_text      text;
    v_doc       jsonb;
    v_i         integer := 0;
    v_n         integer := coalesce(array_length(p_events, 1), 0);
    v_matching  integer;
    v_known     integer;
    r           cases%ROWTYPE;
BEGIN
    IF v_n = 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'DV003', MESSAGE = 'an append needs at least one event';
    END IF;
    IF p_expected = 0 THEN
        INSERT INTO streams (stream_id, version, last_hash)
        VALUES (p_stream_id, 0, decode(repeat('00', 32), 'hex'))
        ON CONFLICT (stream_id) DO NOTHING;
    END IF;
    SELECT s.version, s.last_hash INTO v_version, v_hash
      FROM streams s WHERE s.stream_id = p_stream_id FOR UPDATE;
    IF NOT FOUND THEN
        v_version := 0;
    END IF;

    IF v_version <> p_expected THEN
        -- Either a retry of an append that succeeded (same ids, same content, same places) or a conflict.
        SELECT count(*) FILTER (WHERE e.stream_id = p_stream_id
                                  AND e.version = p_expected + x.i
                                  AND e.hash = sha256(e.prev_hash || convert_to(x.t, 'UTF8'))),
               count(e.event_id)
          INTO v_matching, v_known
          FROM unnest(p_events) WITH ORDINALITY AS x(t, i)
          LEFT JOIN events e ON e.event_id = ((x.t::jsonb) ->> 'event_id')::uuid;
        IF v_matching = v_n THEN
            RETURN QUERY SELECT p_expected + v_n, true;
            RETURN;
        END IF;
        IF v_known > 0 THEN
            RAISE EXCEPTION USING ERRCODE = 'DV002',
                MESSAGE = format('%s of %s event ids are already stored with other content or elsewhere',
                                 v_known - v_matching, v_n);
        END IF;
        RAISE EXCEPTION USING ERRCODE = 'DV001',
            MESSAGE = format('stream %s is at version %s, expected %s', p_stream_id, v_version, p_expected),
            DETAIL = v_version::text;
    END IF;

    FOREACH v_text IN ARRAY p_events LOOP
        v_i := v_i + 1;
        v_doc := v_text::jsonb;
        IF v_doc ->> 'stream_id' IS DISTINCT FROM p_stream_id
           OR (v_doc ->> 'version')::integer IS DISTINCT FROM p_expected + v_i THEN
            RAISE EXCEPTION USING ERRCODE = 'DV003',
                MESSAGE = format('event %s names stream %s version %s, expected %s version %s',
                                 v_i, v_doc ->> 'stream_id', v_doc ->> 'version', p_stream_id, p_expected + v_i);
        END IF;
        v_prev := v_hash;
        v_hash := sha256(v_prev || convert_to(v_text, 'UTF8'));
        INSERT INTO events (stream_id, version, event_id, type, schema_version, occurred_at,
                            actor, reason, legal_basis, data, metadata, prev_hash, hash)
        VALUES (p_stream_id, p_expected + v_i, (v_doc ->> 'event_id')::uuid, v_doc ->> 'type',
                (v_doc ->> 'schema_version')::integer, (v_doc ->> 'occurred_at')::timestamptz,
                v_doc ->> 'actor', v_doc ->> 'reason', v_doc ->> 'legal_basis',
                v_doc -> 'data', v_doc -> 'metadata', v_prev, v_hash);
    END LOOP;

    UPDATE streams SET version = p_expected + v_n, last_hash = v_hash, updated_at = now()
     WHERE stream_id = p_stream_id;

    IF p_case IS NOT NULL THEN
        r := jsonb_populate_record(NULL::cases, p_case);
        INSERT INTO cases AS c (case_id, kind, status, title, lead_body, bodies, district, commune, source,
                                external_ref, received_at, due_at, overdue, version, summary)
        VALUES (p_stream_id, r.kind, r.status, r.title, r.lead_body, coalesce(r.bodies, '{}'), r.district,
                r.commune, r.source, r.external_ref, r.received_at, r.due_at, coalesce(r.overdue, false),
                p_expected + v_n, coalesce(r.summary, '{}'))
        ON CONFLICT (case_id) DO UPDATE SET
            kind = EXCLUDED.kind, status = EXCLUDED.status, title = EXCLUDED.title,
            lead_body = EXCLUDED.lead_body, bodies = EXCLUDED.bodies, district = EXCLUDED.district,
            commune = EXCLUDED.commune, source = EXCLUDED.source, external_ref = EXCLUDED.external_ref,
            received_at = EXCLUDED.received_at, due_at = EXCLUDED.due_at, overdue = EXCLUDED.overdue,
            version = EXCLUDED.version, summary = EXCLUDED.summary, updated_at = now();
    END IF;

    RETURN QUERY SELECT p_expected + v_n, false;
END
$fn$;
