-- Bulk repairs as jobs (`ops.jobs`, `workflows.repair_job`): a retry, reset, nudge or reassignment of many cases,
-- run by one workflow at a set rate, paused, resumed or cancelled, and approved by a second operator first when
-- it resets a case or touches more cases than `DANVAN_JOB_APPROVAL_THRESHOLD`.
--
-- The target set is fixed when the job is made: `repair_job_cases` holds every case, in the order the job works
-- through them, and is never queried again from a filter. The job's workflow holds the same list in its input.
-- The API writes these rows right after starting the workflow, and the workflow's first activity writes them
-- again if they are not there (both `ON CONFLICT DO NOTHING`): whichever crashes, the job has its rows.
CREATE TABLE repair_jobs (
    job_id           text PRIMARY KEY CHECK (job_id ~ '^job_[0-9a-z]{20}$'),
    action           text NOT NULL CHECK (action IN ('retry', 'reset', 'nudge', 'reassign')),
    body             text,                       -- the body to nudge, or to reassign the cases to
    target           jsonb NOT NULL,             -- the target as requested: a filter, or the list of case ids
    reason           text NOT NULL,
    rate             double precision NOT NULL CHECK (rate > 0),
    state            text NOT NULL CHECK (state IN ('awaiting_approval', 'running', 'paused', 'completed',
                                                    'cancelled', 'rejected')),
    needs_approval   boolean NOT NULL,
    requested_by     text NOT NULL,              -- the requester's label (role:id@body), as in RepairRecorded
    requester_id     text NOT NULL,              -- the token holder's label, compared with the approver's
    requested_at     timestamptz NOT NULL,
    decided_by       text,                       -- who approved or rejected it, why and when
    decision_reason  text,
    decided_at       timestamptz,
    idempotency_key  text,
    request_digest   text NOT NULL,              -- SHA-256 of the request, for a repeat under the same key
    total            integer NOT NULL CHECK (total >= 0),
    done             integer NOT NULL DEFAULT 0,
    refused          integer NOT NULL DEFAULT 0,
    failed           integer NOT NULL DEFAULT 0,
    started_at       timestamptz,
    finished_at      timestamptz,
    -- the `seq` of the action that set `state`: a write of an older action, retried late, does not undo it
    state_seq        integer NOT NULL DEFAULT 0,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX repair_jobs_list_idx ON repair_jobs (requested_at DESC, job_id DESC);
CREATE INDEX repair_jobs_state_idx ON repair_jobs (state, requested_at DESC, job_id DESC);
CREATE UNIQUE INDEX repair_jobs_key_idx ON repair_jobs (requester_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- Each case of a job and its outcome: `pending` until the job reaches it, then `done` (the repair recorded, or
-- accepted and recorded when the case's running step ends), `refused` (with the rule) or `failed` (with the
-- error). An outcome is written once: the counts of `repair_jobs` move in the same statement.
CREATE TABLE repair_job_cases (
    job_id       text NOT NULL REFERENCES repair_jobs (job_id) ON DELETE CASCADE,
    position     integer NOT NULL CHECK (position >= 0),
    case_id      text NOT NULL,
    outcome      text NOT NULL DEFAULT 'pending' CHECK (outcome IN ('pending', 'done', 'refused', 'failed')),
    rule         text,
    error        text,
    version      integer,                         -- the case's stream version after its RepairRecorded
    detail       jsonb,
    attempts     integer NOT NULL DEFAULT 0,      -- how many times the job's activity started on it
    started_at   timestamptz,
    finished_at  timestamptz,
    PRIMARY KEY (job_id, position),
    CONSTRAINT repair_job_cases_once UNIQUE (job_id, case_id)
);
CREATE INDEX repair_job_cases_outcome_idx ON repair_job_cases (job_id, outcome, position);

-- Who did what to a job, why and when: its request (seq 0), approval or rejection, pauses, resumptions, its
-- cancellation and its end. `seq` is the workflow's own count, so a retried write is not written twice.
CREATE TABLE repair_job_actions (
    job_id  text NOT NULL REFERENCES repair_jobs (job_id) ON DELETE CASCADE,
    seq     integer NOT NULL CHECK (seq >= 0),
    action  text NOT NULL CHECK (action IN ('request', 'approve', 'reject', 'pause', 'resume', 'cancel',
                                            'complete')),
    actor   text NOT NULL,
    reason  text,
    at      timestamptz NOT NULL,
    PRIMARY KEY (job_id, seq)
);
