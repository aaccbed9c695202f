-- Bearer tokens of the HTTP API. Only a SHA-256 of each token is kept: the token itself is shown once.
CREATE TABLE api_tokens (
    token_hash  text PRIMARY KEY,
    role        text NOT NULL CHECK (role IN ('intake', 'body', 'supervisor', 'operator', 'admin')),
    body_id     text,
    label       text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    CONSTRAINT api_tokens_body_scope CHECK ((role = 'body') = (body_id IS NOT NULL))
);
