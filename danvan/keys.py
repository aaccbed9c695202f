"""The one secret of an installation and the keys derived from it.

`DANVAN_SECRET_KEY` (32 bytes, base64), else `$DANVAN_HOME/secret.key`, made once. Each use gets its own key,
derived with HKDF-SHA256 under a label of its own, so a key that leaks from one use (say, the Temporal payload
codec's) reveals nothing of another (the identity vault's key-encryption key).
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .settings import Settings

#: Labels of the derived keys. A new use takes a new label; changing one makes its key another key.
PAYLOAD_CODEC_LABEL = b"danvan temporal payload codec v1"
IDENTITY_KEK_LABEL = b"danvan identity key-encryption key v1"
ATTACHMENT_KEK_LABEL = b"danvan attachment key-encryption key v1"
#: The installation's fingerprint: a key used for nothing but being named, so that naming it reveals nothing.
FINGERPRINT_LABEL = b"danvan installation fingerprint v1"


def load_key(env_value: str | None, key_file: Path) -> bytes:
    """The 32-byte secret: `env_value` (base64), else the content of `key_file`, made once (mode 0600).

    Two processes starting together (the API and a worker of `danvan up`) may both find no file: the file is
    written aside and linked into place, so the loser of the race reads the winner's whole key.
    """
    if env_value:
        key = base64.b64decode(env_value)
        if len(key) != 32:
            raise ValueError("DANVAN_SECRET_KEY: must be 32 bytes, base64-encoded")
        return key
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        aside = key_file.with_name(f".{key_file.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(base64.b64encode(secrets.token_bytes(32)).decode())
        try:
            os.link(aside, key_file)
        except FileExistsError:
            pass
        finally:
            aside.unlink()
    key = base64.b64decode(key_file.read_text().strip())
    if len(key) != 32:
        raise ValueError(f"{key_file}: must hold 32 bytes, base64-encoded")
    return key


def settings_key(settings: Settings) -> bytes:
    """The installation's secret, as `settings` locate it."""
    return load_key(settings.secret_key, settings.secret_key_file)


def derive_key(secret: bytes, label: bytes) -> bytes:
    """A 32-byte key of its own for the use named by `label` (HKDF-SHA256, no salt: the secret is random)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(secret)


def key_id(key: bytes) -> str:
    """A short public name of a key (a digest: it tells keys apart and reveals nothing of them)."""
    return hashlib.sha256(b"danvan key id\x00" + key).hexdigest()[:16]


def fingerprint(secret: bytes) -> str:
    """The public name of an installation's secret (`key_id` of a key derived for that use only)."""
    return key_id(derive_key(secret, FINGERPRINT_LABEL))


class SecretMismatch(Exception):
    """This process holds another secret than the one the installation recorded at its first start."""


class _Fetches(Protocol):
    async def fetchrow(self, query: str, *args: Any) -> Any: ...


async def check_installation_secret(db: _Fetches, secret: bytes) -> str:
    """Record the installation's secret by its fingerprint at the first start, or refuse (`SecretMismatch`) a
    process whose secret is another: its payloads would be unreadable to the rest of the installation, and it
    could open none of theirs (a worker would retry every workflow task for ever). Returns the fingerprint."""
    mine = fingerprint(secret)
    row = await db.fetchrow(
        "WITH new AS (INSERT INTO installation_secret (purpose, key_id) VALUES ('secret', $1) "
        "ON CONFLICT (purpose) DO NOTHING RETURNING key_id, recorded_at) "
        "SELECT key_id, recorded_at FROM new UNION ALL "
        "SELECT key_id, recorded_at FROM installation_secret WHERE purpose = 'secret' LIMIT 1",
        mine,
    )
    if row is None:  # another process recorded its secret between this statement's snapshot and its insert
        row = await db.fetchrow("SELECT key_id, recorded_at FROM installation_secret WHERE purpose = 'secret'")
    recorded: str = row["key_id"]
    if recorded != mine:
        since: datetime = row["recorded_at"]
        raise SecretMismatch(
            f"this process's secret (fingerprint {mine}) is not the installation's (fingerprint {recorded}, "
            f"recorded {since.isoformat(timespec='seconds')}): every process of one installation must use the same "
            f"DANVAN_SECRET_KEY (or the same $DANVAN_HOME/secret.key)"
        )
    return mine
