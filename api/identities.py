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
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from domain.petitions.model import Petitioner
from eventstore import CaseRecord, Pool

from .tokens import Principal, Role

#: The roles that may ask for a denouncer's identity in clear; `may_unseal` narrows `body` to the lead body.
IDENTITY_ROLES: tuple[Role, ...] = ("body", "supervisor")


def may_unseal(principal: Principal, case: CaseRecord) -> bool:
    """Whether `principal` is cleared to read the denouncer's identity of `case`.

    Luật Tố cáo 2018 keeps the denouncer's name, address and handwriting secret, and binds those who receive
    and resolve the denunciation to that secrecy; the identity is needed to handle the case (to check the
    denouncer's capacity, to notify them of the acceptance, extension and result, to protect them). So:

    - the body that leads the case (`lead_body`), which is the one resolving it: yes;
    - `supervisor` (the commission overseeing how denunciations are resolved and how denouncers are
      protected): yes, with a stated purpose, every read recorded;
    - a coordinating body (it contributes to verification and needs the facts, not the person), `operator`
      (repairs the machinery), `intake` (the sending system already holds what it sent) and `admin` (issues
      tokens): no. An admin who must read one issues a supervisor token, which is itself on record.
    """
    if principal.role == "supervisor":
        return True
    return principal.role == "body" and principal.body_id is not None and case.lead_body == principal.body_id


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
    def __init__(self, pool: Pool, key: bytes) -> None:
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

    async def unseal(
        self,
        ref: str,
        reader: str,
        purpose: str | None = None,
        *,
        case_id: str | None = None,
        role: str | None = None,
        body: str | None = None,
        token_id: str | None = None,
    ) -> dict[str, str | None] | None:
        """The identity in clear, for a cleared reader; None when there is no such ref.

        The read is recorded in `identity_reads` (who, with which role, body and token, the case read and
        the purpose given) before anything is decrypted: when the record cannot be written, nothing is
        revealed. `case_id` is the case the reader asked about (a split-off case shares its parent's ref);
        by default the case the identity was sealed for.
        """
        row = await self.pool.fetchrow("SELECT case_id, nonce, ciphertext FROM sealed_identities WHERE ref = $1", ref)
        if row is None:
            return None
        await self.pool.execute(
            "INSERT INTO identity_reads (ref, case_id, reader, purpose, role, body, token_id) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7)",
            ref, case_id or row["case_id"], reader, purpose, role, body, token_id,
        )
        data: dict[str, str | None] = json.loads(self.aead.decrypt(row["nonce"], row["ciphertext"], ref.encode()))
        return data

    async def ref_of_case(self, case_id: str, summary_ref: str | None) -> str | None:
        """The sealed identity's ref of a case: the one its projection names (`summary.petitioner_ref`, which
        a split-off case shares with its parent) when it is sealed, else the one sealed for this case id."""
        if summary_ref:
            found = await self.pool.fetchval("SELECT ref FROM sealed_identities WHERE ref = $1", summary_ref)
            if found is not None:
                return str(found)
        ref = await self.pool.fetchval(
            "SELECT ref FROM sealed_identities WHERE case_id = $1 ORDER BY created_at LIMIT 1", case_id
        )
        return str(ref) if ref is not None else None


@dataclass(frozen=True)
class IdentityRead:
    """One recorded read of a sealed identity."""

    id: int
    case_id: str
    reader: str
    role: str | None
    body: str | None
    token_id: str | None
    purpose: str | None
    read_at: datetime


async def list_identity_reads(pool: Pool, case_id: str, *, limit: int = 1000) -> list[IdentityRead]:
    """The recorded reads of a case's sealed identity, newest first (the ref itself is not shown)."""
    rows = await pool.fetch(
        "SELECT id, case_id, reader, role, body, token_id, purpose, read_at FROM identity_reads "
        "WHERE case_id = $1 ORDER BY id DESC LIMIT $2",
        case_id, limit,
    )
    return [IdentityRead(**dict(r)) for r in rows]
