-- Who read a denunciation case: every answer of `GET /v1/cases/{id}` and `GET /v1/cases/{id}/history` about
-- a denunciation is recorded here before it is sent (the case list is not: its rows carry no identity).
CREATE TABLE case_reads (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id     text NOT NULL,
    reader      text NOT NULL,   -- the token's label
    token_id    text,            -- the first digits of the token's hash: names the token, not its holder's label
    role        text NOT NULL,
    body        text,            -- the body of a `body` token
    what        text NOT NULL,   -- `case`, `history`, `history+process`
    read_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX case_reads_case_idx ON case_reads (case_id, id);

-- A read of a sealed identity names the reader's role, body and token too.
ALTER TABLE identity_reads
    ADD COLUMN role      text,
    ADD COLUMN body      text,
    ADD COLUMN token_id  text;

-- The dashboard counts (`GET /v1/cases/counts`) group by these columns: in one narrow index (about 2 MB for
-- 100,000 cases, against 90 MB of table) an unfiltered count, or one filtered by kind, status, lead body,
-- district or overdue, is an index-only scan in (status, kind, lead_body, district) order (`bench.listing`).
CREATE INDEX cases_counts_idx ON cases (status, kind, lead_body, district, overdue);

-- A received-date range: the list reads a range in the past through this index and sorts it (the
-- newest-first index would walk every case received since; `api.queries.fence_received_range`), and the
-- counts of a range are an index-only scan of just that range, with the columns they group by.
CREATE INDEX cases_received_idx ON cases (received_at, status, kind, lead_body, district, overdue);
