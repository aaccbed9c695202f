-- A single event is appended by one statement (`eventstore/store.py`, `_APPEND_NEXT`): one UPDATE moves the
-- stream head and hands the new event both links of its chain. RETURNING shows only the new row (before
-- PostgreSQL 18), so the head keeps the hash it had before its last event next to `last_hash`: the last
-- event's `prev_hash`, which an UPDATE that sets `prev_hash = last_hash` returns for the event it appends.
-- Without it the statement would have to lock the head first (a second scan and a lock record in the WAL).

ALTER TABLE streams ADD COLUMN prev_hash bytea NOT NULL DEFAULT decode(repeat('00', 32), 'hex');

UPDATE streams s SET prev_hash = e.prev_hash
  FROM events e
 WHERE e.stream_id = s.stream_id AND e.version = s.version;

-- PostgreSQL builds a table's CHECK expressions anew for every statement that writes it: the two checks on
-- `version` were 5% of the server's work in an append (27,000 of 516,000 instructions, `perf stat` on the
-- backends under `bench.append_throughput`'s workload). Both write paths compute versions as a non-negative
-- expected version plus 1..n and refuse a negative one (the store before the database, the function and
-- the statements again), and `verify` walks every version from 1, so the rule stands without them.
ALTER TABLE events DROP CONSTRAINT events_version_check;
ALTER TABLE streams DROP CONSTRAINT streams_version_check;

-- The feed's order is the primary key: one index instead of two. Nothing looks an event up by its position
-- alone; the feed reads (tx_id, position), which identifies an event as well (a position is never handed out
-- twice). An append writes one index entry less (62 bytes of WAL and 13,000 instructions an event, measured as
-- above).
ALTER TABLE events DROP CONSTRAINT events_pkey;
DROP INDEX events_feed_idx;
ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY (tx_id, position);

-- The function stays the path for batches, and for a single event that is not the plain case (a retry, a
-- conflict). Same contract, same errors and hashes as in 0005. It now keeps `prev_hash`, refuses a negative
-- expected version itself, and takes a single event through the batch path (the one-row path of 0005 was
-- for single events, which no longer come here in the common case).
CREATE OR REPLACE FUNCTION danvan_append(p_stream_id text, p_expected integer, p_events text[], p_case jsonb)
RETURNS TABLE (out_version integer, out_duplicate boolean)
LANGUAGE plpgsql AS $fn$
DECLARE
    v_version   integer;
    v_hash      bytea;
    v_i         integer;
    v_n         integer := coalesce(array_length(p_events, 1), 0);
    v_matching  integer;
    v_known     integer;
    v_inserted  integer;
    v_prevs     bytea[];
    v_hashes    bytea[];
    v_docs      jsonb[];
    r           cases%ROWTYPE;
BEGIN
    IF v_n = 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'DV003', MESSAGE = 'an append needs at least one event';
    END IF;
    IF p_expected IS NULL OR p_expected < 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'DV003', MESSAGE = 'the expected version must be 0 (new stream) or more';
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

    -- Chain the hashes in order, then insert every row with one statement. Each text is parsed once, here.
    v_prevs := array_fill(NULL::bytea, ARRAY[v_n]);
    v_hashes := array_fill(NULL::bytea, ARRAY[v_n]);
    v_docs := array_fill(NULL::jsonb, ARRAY[v_n]);
    FOR v_i IN 1 .. v_n LOOP
        v_docs[v_i] := p_events[v_i]::jsonb;
        v_prevs[v_i] := v_hash;
        v_hash := sha256(v_hash || convert_to(p_events[v_i], 'UTF8'));
        v_hashes[v_i] := v_hash;
    END LOOP;
    INSERT INTO events (stream_id, version, event_id, type, schema_version, occurred_at,
                        actor, reason, legal_basis, data, metadata, prev_hash, hash)
    SELECT p_stream_id, p_expected + u.i, (u.d ->> 'event_id')::uuid, u.d ->> 'type',
           (u.d ->> 'schema_version')::integer, (u.d ->> 'occurred_at')::timestamptz,
           u.d ->> 'actor', u.d ->> 'reason', u.d ->> 'legal_basis', u.d -> 'data', u.d -> 'metadata',
           u.pv, u.h
      FROM unnest(v_docs, v_prevs, v_hashes) WITH ORDINALITY AS u(d, pv, h, i)
     WHERE u.d ->> 'stream_id' = p_stream_id AND (u.d ->> 'version')::integer = p_expected + u.i;
    GET DIAGNOSTICS v_inserted = ROW_COUNT;
    IF v_inserted <> v_n THEN
        RAISE EXCEPTION USING ERRCODE = 'DV003',
            MESSAGE = format('%s of %s events name another stream or version than %s from version %s',
                             v_n - v_inserted, v_n, p_stream_id, p_expected + 1);
    END IF;

    UPDATE streams SET version = p_expected + v_n, last_hash = v_hash, prev_hash = v_prevs[v_n], updated_at = now()
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
