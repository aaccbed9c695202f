-- The stalled set as the scheduled scan last saw it (`ops.scan`): the case list's `stalled` filter, its counts,
-- `GET /v1/ops/stalled` and the console's queue read it in one query instead of asking Temporal.
--
-- A finding is one reason one case is stalled (a step is one activity of its run). It is open while the scan
-- keeps seeing it: `first_seen` is when the scan first saw it, `since` when Temporal or the record says it began,
-- `times_seen` how many looks saw it, `last_seen` the last. Once a look no longer sees it, it is closed
-- (`cleared_at`) and kept, with the repairs recorded in the case's stream while it was open (`repairs`: the
-- `RepairRecorded` events, who, why, when); a later stall of the same kind is a new finding.
CREATE TABLE stalled_findings (
    finding_id  bigserial PRIMARY KEY,
    case_id     text NOT NULL,
    reason      text NOT NULL,
    -- the activity id of a failing or paused step; '' for the other reasons
    step        text NOT NULL DEFAULT '',
    kind        text,
    lead_body   text,
    since       timestamptz,
    detail      text NOT NULL,
    -- the finding as `ops.stalled.Stalled` has it (attempts, last failure, run, remedies...)
    finding     jsonb NOT NULL,
    first_seen  timestamptz NOT NULL,
    last_seen   timestamptz NOT NULL,
    times_seen  integer NOT NULL DEFAULT 1,
    cleared_at  timestamptz,
    repairs     jsonb NOT NULL DEFAULT '[]'
);
CREATE UNIQUE INDEX stalled_findings_open_key ON stalled_findings (case_id, reason, step) WHERE cleared_at IS NULL;
CREATE INDEX stalled_findings_open_order ON stalled_findings (since, case_id) WHERE cleared_at IS NULL;
CREATE INDEX stalled_findings_cleared ON stalled_findings (cleared_at) WHERE cleared_at IS NOT NULL;

-- Each look of the scan: when, what it found, what it cost (Temporal RPCs), or why it failed.
CREATE TABLE stalled_scans (
    scan_id        bigserial PRIMARY KEY,
    started_at     timestamptz NOT NULL,
    finished_at    timestamptz NOT NULL,
    found          integer NOT NULL DEFAULT 0,
    opened         integer NOT NULL DEFAULT 0,
    cleared        integer NOT NULL DEFAULT 0,
    list_calls     integer NOT NULL DEFAULT 0,
    describe_calls integer NOT NULL DEFAULT 0,
    history_calls  integer NOT NULL DEFAULT 0,
    flagged        integer NOT NULL DEFAULT 0,
    noted          integer NOT NULL DEFAULT 0,
    error          text
);
CREATE INDEX stalled_scans_finished ON stalled_scans (finished_at);
