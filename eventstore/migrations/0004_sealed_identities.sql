-- Identities kept secret by law (the denouncer's, Luật Tố cáo 2018): encrypted at rest, referred to elsewhere
-- only by a pseudonymous `ref`. Every read of one is recorded in `identity_reads`.
CREATE TABLE sealed_identities (
    ref         text PRIMARY KEY,
    case_id     text NOT NULL,
    nonce       bytea NOT NULL,
    ciphertext  bytea NOT NULL,
    key_id      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE identity_reads (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ref         text NOT NULL,
    case_id     text NOT NULL,
    reader      text NOT NULL,
    purpose     text,
    read_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX identity_reads_case_idx ON identity_reads (case_id, read_at);
