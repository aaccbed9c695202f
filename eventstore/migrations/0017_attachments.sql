-- Attachments: the bytes of the files a case holds (the scanned letter, evidence, signed decisions), stored
-- content-addressed by their SHA-256 (`eventstore.blobs`). The case's `AttachmentAdded` event records the file's
-- name, sniffed media type, size and hash, so its stream's hash chain and the signed checkpoints cover every file.
--
-- A blob is a row of `blobs` and its bytes in `blob_chunks`, in order (256 KiB each, the last shorter). Chunks are
-- written under a `blob_id` while the hash is not known yet, and the `blobs` row that names them is inserted in
-- the same transaction once the last chunk is in: a blob is there whole or not at all, and two uploads of the same
-- bytes keep one copy. The chunks are stored out of line and uncompressed (STORAGE EXTERNAL): most files sent are
-- PDF, JPEG or PNG, already compressed, and compressing them again costs time for nothing.
CREATE SEQUENCE blob_ids;

CREATE TABLE blobs (
    hash        text PRIMARY KEY CHECK (hash ~ '^[0-9a-f]{64}$'),
    blob_id     bigint NOT NULL UNIQUE,
    size        bigint NOT NULL CHECK (size >= 0),
    chunk_size  integer NOT NULL CHECK (chunk_size > 0),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE blob_chunks (
    blob_id  bigint NOT NULL,
    seq      integer NOT NULL CHECK (seq >= 0),
    data     bytea NOT NULL,
    PRIMARY KEY (blob_id, seq)
);
ALTER TABLE blob_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

-- The files of a denunciation are stored encrypted (AES-256-GCM, `api.attachments`), each under a data key of
-- its own, wrapped (RFC 3394) by a key-encryption key derived from the installation's secret, as the denouncer's
-- identity is (0009). `sha256` is the file's hash as its event records it, `stored` the hash of the ciphertext
-- blob. `ref` is the sealed identity the case carries: erasing that identity destroys these keys too
-- (crypto-shredding), since a denunciation's letter names its author. An erased row keeps its case, hashes and
-- the time it was erased.
CREATE TABLE attachment_keys (
    case_id      text NOT NULL,
    sha256       text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    stored       text NOT NULL CHECK (stored ~ '^[0-9a-f]{64}$'),
    ref          text,
    wrapped_key  bytea,
    kek_id       text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    erased_at    timestamptz,
    PRIMARY KEY (case_id, sha256),
    CONSTRAINT attachment_keys_erased_or_kept CHECK ((erased_at IS NULL) = (wrapped_key IS NOT NULL))
);
CREATE INDEX attachment_keys_ref_idx ON attachment_keys (ref) WHERE ref IS NOT NULL;
