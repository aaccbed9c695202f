-- The installation's secret, known by a public digest only. Every process of one installation (API, worker,
-- verify, checkpoint, the CLI) derives its keys from one secret: the first process to start records the
-- secret's key id here, and a process holding another secret refuses to start, instead of writing payloads
-- nobody else can open or retrying forever on payloads it cannot open.
CREATE TABLE installation_secret (
    purpose      text PRIMARY KEY CHECK (purpose = 'secret'),
    key_id       text NOT NULL CHECK (key_id ~ '^[0-9a-f]{16}$'),
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
