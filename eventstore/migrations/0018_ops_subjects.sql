-- What the operators' stalled queue holds besides cases, and what is done about it.
--
-- A finding of the stalled scan (`stalled_findings`, migration 0014) is about a case, a webhook subscription that
-- gave up delivering (`subscription_failing`), or a checkpoint signer that has not signed in time
-- (`checkpoint_late`); `subject` says which, and `case_id` then holds the subscription's or the signer's id.
ALTER TABLE stalled_findings ADD COLUMN subject text NOT NULL DEFAULT 'case'
    CHECK (subject IN ('case', 'subscription', 'checkpoint'));

-- The remedies applied to subjects that have no stream of their own (a subscription, the checkpoints): who, why,
-- when, under which `Idempotency-Key` (with the digests of the request and its sender, so a key is refused for
-- another request), and, for a request the checkpoint signer carries out (`take a checkpoint now`), when it was
-- done and how it went. A case's repairs are `RepairRecorded` events of its stream instead.
CREATE TABLE ops_remedies (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject        text NOT NULL CHECK (subject IN ('subscription', 'checkpoint')),
    subject_id     text NOT NULL,
    action         text NOT NULL,
    actor          text NOT NULL,
    actor_role     text NOT NULL,
    reason         text NOT NULL,
    detail         jsonb NOT NULL DEFAULT '{}',
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    command_id     text,
    command_digest text,
    sender_digest  text,
    done_at        timestamptz,
    outcome        text
);
CREATE UNIQUE INDEX ops_remedies_key ON ops_remedies (subject, subject_id, command_id) WHERE command_id IS NOT NULL;
CREATE INDEX ops_remedies_subject ON ops_remedies (subject, subject_id, recorded_at);
CREATE INDEX ops_remedies_pending ON ops_remedies (recorded_at) WHERE subject = 'checkpoint' AND done_at IS NULL;

-- Each process that signs checkpoints (`danvan checkpoint`, `--every N` in `danvan up`), as it says of itself:
-- its interval, when it started and stopped, its last try, the last checkpoint it signed and its last error. The
-- log outside the database stays the record; this is what the stalled scan and the metrics read to say a
-- checkpoint is late, since the signer runs where the key is and nowhere else.
CREATE TABLE checkpoint_signers (
    signer          text PRIMARY KEY,
    key_fingerprint text,
    log_path        text NOT NULL,
    every_seconds   integer CHECK (every_seconds > 0),
    started_at      timestamptz NOT NULL,
    stopped_at      timestamptz,
    last_try_at     timestamptz,
    last_signed_at  timestamptz,
    last_seq        integer,
    last_tree_size  bigint,
    last_root       text,
    last_error      text,
    last_error_at   timestamptz
);

-- Webhooks: a create retried under the same `Idempotency-Key` answers the subscription it made (never its secret
-- again); the cursor it started from, so a retry after a crash between the row and its workflow starts it there.
ALTER TABLE subscriptions
    ADD COLUMN idempotency_key text,
    ADD COLUMN request_digest  text,
    ADD COLUMN sender_digest   text,
    ADD COLUMN start_tx        bigint,
    ADD COLUMN start_position  bigint;
CREATE UNIQUE INDEX subscriptions_idempotency_key ON subscriptions (idempotency_key) WHERE idempotency_key IS NOT NULL;

-- Deliveries older than the retention (`DANVAN_WEBHOOK_KEEP_DAYS`) are deleted in bounded batches, oldest first.
CREATE INDEX deliveries_started_idx ON deliveries (started_at);
