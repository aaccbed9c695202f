-- Steps (Temporal activities) that failed and are being retried, as the worker saw them (`ops.steps`): Temporal's
-- visibility flags a workflow whose own code keeps failing (TemporalReportedProblems) and a paused step
-- (TemporalPauseInfo), but nothing of an activity that keeps failing. The worker writes a row when an attempt
-- fails (or when a retry starts, which also covers an attempt that timed out) and deletes it when a retried
-- attempt succeeds; a step that succeeds at its first attempt writes nothing. The stalled scan describes only
-- the workflows named here (and those visibility flags), never every running one, and deletes the rows of steps
-- Temporal no longer holds pending.
CREATE TABLE step_failures (
    workflow_id     text NOT NULL,
    activity_id     text NOT NULL,
    run_id          text NOT NULL,
    activity_type   text NOT NULL,
    -- attempts that failed (or timed out) so far: the attempt running or waiting is the next one
    failed_attempts integer NOT NULL CHECK (failed_attempts >= 1),
    last_failure    text,
    first_failed_at timestamptz NOT NULL DEFAULT now(),
    last_failed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workflow_id, run_id, activity_id)
);
CREATE INDEX step_failures_attempts_idx ON step_failures (failed_attempts);
