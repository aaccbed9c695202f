-- Every petitioner's identity is sealed (not only a denouncer's), each under its own data key, so that one
-- identity can be erased by destroying its key (crypto-shredding) while every hash chain stays as it was:
-- the events hold only the pseudonymous ref.
--
-- `wrapped_key`: the identity's AES-256 data key, wrapped (RFC 3394) by the key-encryption key derived from
-- the installation's secret; `kek_id` names that key. Rows sealed before this migration have no data key of
-- their own (their ciphertext is under the secret's key, `key_id`); erasing one destroys its ciphertext.
-- An erased row keeps its ref, case and the time it was erased, and nothing else.
ALTER TABLE sealed_identities
    ALTER COLUMN nonce DROP NOT NULL,
    ALTER COLUMN ciphertext DROP NOT NULL,
    ADD COLUMN wrapped_key  bytea,
    ADD COLUMN kek_id       text,
    ADD COLUMN erased_at    timestamptz,
    ADD CONSTRAINT sealed_identities_erased_or_kept
        CHECK ((erased_at IS NULL) = (ciphertext IS NOT NULL AND nonce IS NOT NULL));

-- Who erased an identity, when and why (`danvan identity erase`, `POST /v1/identities/{ref}/erase`).
CREATE TABLE identity_erasures (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ref         text NOT NULL UNIQUE,
    case_id     text NOT NULL,
    erased_by   text NOT NULL,   -- the token's label, or the login on the command line
    role        text NOT NULL,
    token_id    text,
    reason      text NOT NULL,
    erased_at   timestamptz NOT NULL DEFAULT now()
);

