"""Sealing a denouncer's identity (Luật Tố cáo 2018: the identity of a denouncer is kept secret).

The API replaces the petitioner of a denunciation with a pseudonymous `ref` before anything reaches
Temporal, the event store or a log, and keeps the identity AES-256-GCM encrypted in `sealed_identities`.
The `ref` is an HMAC of the sender's key (`source` + `external_ref`), so a repeated submission maps to the
same ref and the same case; the key never leaves the API's host.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

import asyncpg
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from domain.petitions.model import Petitioner


class IdentityConflict(Exception):
    """The same petition was sent again with another identity."""


def load_key(env_value: str | None, key_file: Path) -> bytes:
    """The 32-byte sealing key: `DANVAN_SECRET_KEY` (base64), else `$DANVAN_HOME/secret.key`, made once."""
    if env_value:
        key = base64.b64decode(env_value)
        if len(key) != 32:
            raise ValueError("DANVAN_SECRET_KEY: must be 32 bytes, base64-encoded")
        return key
    if key_file.exists():
        return base64.b64decode(key_file.read_text().strip())
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(base64.b64encode(key).decode())
    return key


class IdentityVault:
    def __init__(self, pool: asyncpg.Pool, key: bytes) -> None:
        self.pool = pool
        self.key = key
        self.key_id = hashlib.sha256(key).hexdigest()[:12]
        self.aead = AESGCM(key)

    def ref_for(self, source: str, external_ref: str) -> str:
        mac = hmac.new(self.key, f"{source}\x1f{external_ref}".encode(), hashlib.sha256).hexdigest()
        return "sealed-" + mac[:24]

    async def seal(self, case_id: str, source: str, external_ref: str, petitioner: Petitioner) -> Petitioner:
        """Store the identity encrypted; return the petitioner as the rest of the system may see it."""
        ref = self.ref_for(source, external_ref)
        clear = json.dumps(petitioner.model_dump(exclude={"ref", "count"}), ensure_ascii=False, sort_keys=True)
        existing = await self.pool.fetchrow("SELECT nonce, ciphertext FROM sealed_identities WHERE ref = $1", ref)
        if existing is not None:
            stored = self.aead.decrypt(existing["nonce"], existing["ciphertext"], ref.encode()).decode()
            if stored != clear:
                raise IdentityConflict(ref)
        else:
            nonce = secrets.token_bytes(12)
            await self.pool.execute(
                "INSERT INTO sealed_identities (ref, case_id, nonce, ciphertext, key_id) VALUES ($1, $2, $3, $4, $5) "
                "ON CONFLICT (ref) DO NOTHING",
                ref, case_id, nonce, self.aead.encrypt(nonce, clear.encode(), ref.encode()), self.key_id,
            )
        return Petitioner(ref=ref, count=petitioner.count)

    async def unseal(self, ref: str, reader: str, purpose: str | None = None) -> dict[str, str | None] | None:
        """The identity in clear, for a cleared reader; the read is recorded."""
        row = await self.pool.fetchrow("SELECT case_id, nonce, ciphertext FROM sealed_identities WHERE ref = $1", ref)
        if row is None:
            return None
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO identity_reads (ref, case_id, reader, purpose) VALUES ($1, $2, $3, $4)",
                ref, row["case_id"], reader, purpose,
            )
        data: dict[str, str | None] = json.loads(self.aead.decrypt(row["nonce"], row["ciphertext"], ref.encode()))
        return data
