"""Sealing every petitioner's identity, reading it for those cleared to, and erasing it.

The API replaces the petitioner of every petition, whatever its kind, with a pseudonymous `ref` (and the
facts the rules need: how many petition, whether a name and a way to find them were given) before anything
reaches Temporal, the event store or a log. A complaint may turn out to be a denunciation (Luật Tố cáo 2018
keeps a denouncer's identity secret), a letter may be split and an appeal opens a second case: all of them
carry the same `ref`, so the identity is never anywhere but here.

The identity is AES-256-GCM encrypted in `sealed_identities` under a data key of its own, which is stored
wrapped by the key-encryption key derived from the installation's secret (`danvan.keys`). Erasing destroys the
data key and the ciphertext (crypto-shredding): the events, which hold only the ref, and their hash chains are
untouched. The `ref` is an HMAC of the sender's key (`source` + `external_ref`), so a repeated submission maps
to the same ref and the same case; the key never leaves the API's host.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap, aes_key_wrap

from danvan.keys import IDENTITY_KEK_LABEL, derive_key, key_id
from domain.petitions.model import Petitioner, PetitionKind
from eventstore import CaseRecord, Pool
from eventstore.models import RecordedEvent

from .attachments import erase_for_ref
from .tokens import Principal, Role

#: The roles that may ask for a petitioner's identity in clear; `may_unseal` narrows `body` to the lead body.
IDENTITY_ROLES: tuple[Role, ...] = ("body", "supervisor")
#: The case kinds that have a petitioner.
PETITION_KINDS = frozenset(k.value for k in PetitionKind)
#: The fields of an identity (what sealing removes from the petition).
IDENTITY_FIELDS = ("name", "address", "phone", "email", "id_number")


def may_unseal(principal: Principal, case: CaseRecord) -> bool:
    """Whether `principal` is cleared to read the petitioner's identity of `case`, whatever its kind.

    The identity is needed to handle the case (to check the petitioner's capacity, to notify them of the
    acceptance, extension and result, to hold a dialogue, to protect a denouncer). So:

    - the body that leads the case (`lead_body`), which is the one resolving it: yes;
    - `supervisor` (the commission overseeing how petitions are resolved and how denouncers are protected):
      yes, with a stated purpose, every read recorded;
    - a coordinating body (it contributes to verification and needs the facts, not the person), `operator`
      (repairs the machinery), `intake` (the sending system already holds what it sent) and `admin` (issues
      tokens): no. An admin who must read one issues a supervisor token, which is itself on record.

    For a denunciation this is what Luật Tố cáo 2018 requires; a case that was ever a denunciation stays
    under that regime (`under_denunciation_regime`), which also records every read of the case itself.
    """
    if principal.role == "supervisor":
        return True
    return principal.role == "body" and principal.body_id is not None and case.lead_body == principal.body_id


class IdentityConflict(Exception):
    """The same petition was sent again with another identity."""


class IdentityErased(Exception):
    """The identity was erased: nothing of it can be read or compared any more."""

    def __init__(self, ref: str, erasure: Erasure | None) -> None:
        super().__init__(ref)
        self.ref = ref
        self.erasure = erasure


class IdentityNotFound(LookupError):
    """No identity is sealed under that ref."""


@dataclass(frozen=True)
class Erasure:
    """The record of one erased identity."""

    ref: str
    case_id: str
    erased_by: str
    role: str
    token_id: str | None
    reason: str
    erased_at: datetime


def _clear_text(petitioner: Petitioner) -> str:
    """The identity as it is encrypted and compared: its fields, canonical (sorted keys, NFC by the model)."""
    return json.dumps({k: getattr(petitioner, k) for k in IDENTITY_FIELDS}, ensure_ascii=False, sort_keys=True)


class IdentityVault:
    def __init__(self, pool: Pool, key: bytes) -> None:
        self.pool = pool
        self.key = key
        self.key_id = hashlib.sha256(key).hexdigest()[:12]  # of rows sealed directly under the secret (0004)
        self.aead = AESGCM(key)
        self.kek = derive_key(key, IDENTITY_KEK_LABEL)
        self.kek_id = key_id(self.kek)

    def ref_for(self, source: str, external_ref: str) -> str:
        mac = hmac.new(self.key, f"{source}\x1f{external_ref}".encode(), hashlib.sha256).hexdigest()
        return "sealed-" + mac[:24]

    def _open(self, row: Any, ref: str) -> str:
        """The clear text of a stored identity row (not erased)."""
        if row["wrapped_key"] is None:  # sealed before identities had keys of their own
            return self.aead.decrypt(row["nonce"], row["ciphertext"], ref.encode()).decode()
        data_key = aes_key_unwrap(self.kek, row["wrapped_key"])
        return AESGCM(data_key).decrypt(row["nonce"], row["ciphertext"], ref.encode()).decode()

    async def seal(self, case_id: str, source: str, external_ref: str, petitioner: Petitioner) -> Petitioner:
        """Store the identity encrypted under a new data key; return the petitioner as the rest of the system
        may see it (`Petitioner.sealed`). The same petition again with the same identity gives the same
        answer; with another identity, `IdentityConflict`; after its identity was erased, `IdentityErased`."""
        ref = self.ref_for(source, external_ref)
        clear = _clear_text(petitioner)
        existing = await self.pool.fetchrow(
            "SELECT nonce, ciphertext, wrapped_key, erased_at FROM sealed_identities WHERE ref = $1", ref)
        if existing is None:
            await self._check_recorded_in_clear(case_id, clear, ref)
            data_key = AESGCM.generate_key(bit_length=256)
            nonce = secrets.token_bytes(12)
            await self.pool.execute(
                "INSERT INTO sealed_identities (ref, case_id, nonce, ciphertext, key_id, wrapped_key, kek_id) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (ref) DO NOTHING",
                ref, case_id, nonce, AESGCM(data_key).encrypt(nonce, clear.encode(), ref.encode()),
                key_id(data_key), aes_key_wrap(self.kek, data_key), self.kek_id,
            )
            existing = await self.pool.fetchrow(  # a concurrent first submission may have won: compare with it
                "SELECT nonce, ciphertext, wrapped_key, erased_at FROM sealed_identities WHERE ref = $1", ref)
        if existing["erased_at"] is not None:
            raise IdentityErased(ref, await self.erasure(ref))
        if self._open(existing, ref) != clear:
            raise IdentityConflict(ref)
        return petitioner.sealed(ref)

    async def discard_unopened(self, ref: str, case_id: str) -> bool:
        """Forget an identity sealed for a petition whose case was refused before its first event: no case
        holds its ref. True when it was removed."""
        removed = await self.pool.fetchval(
            "DELETE FROM sealed_identities s WHERE s.ref = $1 AND s.case_id = $2 AND s.erased_at IS NULL "
            "AND NOT EXISTS (SELECT 1 FROM events e WHERE e.stream_id = $2) RETURNING s.ref", ref, case_id)
        return removed is not None

    async def _check_recorded_in_clear(self, case_id: str, clear: str, ref: str) -> None:
        """A case received before every petitioner was sealed holds its petitioner in its first event: a
        resubmission must name the same person (`IdentityConflict` otherwise)."""
        recorded = await self.pool.fetchval(
            "SELECT data->'intake'->'petitioner' FROM events WHERE stream_id = $1 AND version = 1 "
            "AND type = 'PetitionReceived'", case_id)
        if recorded is None:
            return
        petitioner = Petitioner.model_validate(recorded if isinstance(recorded, dict) else json.loads(recorded))
        if petitioner.identifying and _clear_text(petitioner) != clear:
            raise IdentityConflict(ref)

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
        """The identity in clear, for a cleared reader; None when there is no such ref; `IdentityErased` when
        it was erased (the attempt is recorded all the same).

        The read is recorded in `identity_reads` (who, with which role, body and token, the case read and
        the purpose given) before anything is decrypted: when the record cannot be written, nothing is
        revealed. `case_id` is the case the reader asked about (a split-off case shares its parent's ref);
        by default the case the identity was sealed for.
        """
        row = await self.pool.fetchrow(
            "SELECT case_id, nonce, ciphertext, wrapped_key, erased_at FROM sealed_identities WHERE ref = $1", ref)
        if row is None:
            return None
        await self.pool.execute(
            "INSERT INTO identity_reads (ref, case_id, reader, purpose, role, body, token_id) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7)",
            ref, case_id or row["case_id"], reader, purpose, role, body, token_id,
        )
        if row["erased_at"] is not None:
            raise IdentityErased(ref, await self.erasure(ref))
        data: dict[str, str | None] = json.loads(self._open(row, ref))
        return data

    async def erase(self, ref: str, *, by: str, role: str, reason: str, token_id: str | None = None) -> Erasure:
        """Crypto-shred the identity under `ref`: its data key and ciphertext are destroyed, and so are the keys
        of the files stored encrypted for the cases that carry it (`api.attachments`), and the erasure is
        recorded (who, when, why) in one transaction. `IdentityNotFound` when there is no such ref;
        `IdentityErased` when it was already erased (nothing changes)."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT case_id, erased_at FROM sealed_identities WHERE ref = $1 FOR UPDATE", ref)
            if row is None:
                raise IdentityNotFound(ref)
            if row["erased_at"] is not None:
                raise IdentityErased(ref, await self.erasure(ref))
            await conn.execute(
                "UPDATE sealed_identities SET nonce = NULL, ciphertext = NULL, wrapped_key = NULL, "
                "erased_at = now() WHERE ref = $1", ref)
            # A denunciation's files are stored under keys tied to its identity: they go with it.
            await erase_for_ref(conn, ref)
            recorded = await conn.fetchrow(
                "INSERT INTO identity_erasures (ref, case_id, erased_by, role, token_id, reason) "
                "VALUES ($1, $2, $3, $4, $5, $6) "
                "RETURNING ref, case_id, erased_by, role, token_id, reason, erased_at",
                ref, row["case_id"], by, role, token_id, reason)
        return Erasure(**dict(recorded))

    async def erasure(self, ref: str) -> Erasure | None:
        """The record of the erasure of `ref`, if it was erased."""
        row = await self.pool.fetchrow(
            "SELECT ref, case_id, erased_by, role, token_id, reason, erased_at FROM identity_erasures "
            "WHERE ref = $1", ref)
        return Erasure(**dict(row)) if row is not None else None

    async def recorded_in_clear(
        self,
        first: RecordedEvent | None,
        reader: str,
        purpose: str | None = None,
        *,
        case_id: str,
        role: str | None = None,
        body: str | None = None,
        token_id: str | None = None,
    ) -> dict[str, str | None] | None:
        """The identity of a petition received before every petitioner was sealed, from its first event
        (`first`), for a cleared reader; None when that event holds none. The read is recorded first, as for a
        sealed one (ref `in-event`). Such an identity cannot be erased: the event is part of a hash chain."""
        if first is None or first.type != "PetitionReceived":
            return None
        petitioner = (first.data.get("intake") or {}).get("petitioner") or {}
        if not isinstance(petitioner, dict) or not any(petitioner.get(k) for k in IDENTITY_FIELDS):
            return None
        await self.pool.execute(
            "INSERT INTO identity_reads (ref, case_id, reader, purpose, role, body, token_id) "
            "VALUES ('in-event', $1, $2, $3, $4, $5, $6)",
            case_id, reader, purpose, role, body, token_id,
        )
        return {k: petitioner.get(k) for k in IDENTITY_FIELDS}

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


#: The events that make a case a denunciation: received as one, classified as one, split with a part that is one.
_DENUNCIATION_EVENTS = """
    (e.type = 'PetitionReceived' AND e.data->'intake'->>'kind' = 'denunciation')
    OR (e.type = 'Classified' AND e.data->>'kind' = 'denunciation')
    OR (e.type = 'PetitionSplit' AND e.data->'children' @> '[{"kind": "denunciation"}]')
"""


async def under_denunciation_regime(pool: Pool, case: CaseRecord) -> bool:
    """Whether `case` is, or ever was, a denunciation, or shares its petitioner with one that is or was.

    A complaint reclassified as a denunciation, the parts of a split letter one of which denounces, an appeal
    and a forwarded case keep the denouncer's ref, and the identity behind it stays under Luật Tố cáo 2018
    from then on, for every case that carries it (its parent and parts included) and for every event shown
    of them, earlier ones too. Asked of the events, not of the current kind, so a reclassification back to
    a complaint does not lift the regime.

    The cases that share a petitioner are one family, linked both ways in their projections (a part or an
    appeal names its parent in `linked_cases`, the parent names it), so the family is walked by primary key
    and nothing scans the `cases` table.
    """
    if case.kind == "denunciation":
        return True
    if case.kind not in PETITION_KINDS:  # a plan task or a report cycle has no petitioner
        return False
    found = await pool.fetchval(
        "WITH RECURSIVE family(case_id) AS ("
        "  SELECT $1::text"
        "  UNION SELECT linked.value FROM family f JOIN cases c ON c.case_id = f.case_id,"
        "    jsonb_array_elements_text(coalesce(c.summary->'linked_cases', '[]'::jsonb)"
        "      || CASE WHEN c.summary->>'parent_case_id' IS NULL THEN '[]'::jsonb"
        "              ELSE jsonb_build_array(c.summary->'parent_case_id') END) AS linked(value)"
        ") SELECT EXISTS (SELECT 1 FROM cases c JOIN family f USING (case_id) WHERE c.kind = 'denunciation')"
        f"  OR EXISTS (SELECT 1 FROM events e JOIN family f ON e.stream_id = f.case_id WHERE {_DENUNCIATION_EVENTS})",
        case.case_id,
    )
    return bool(found)


def redact_petitioner(data: dict[str, Any]) -> dict[str, Any]:
    """Event data as it may be shown: an identity recorded in clear (a petition received before every
    petitioner was sealed) is replaced by what sealing keeps of it. Data with nothing to hide is returned as is.
    """
    intake = data.get("intake")
    if not isinstance(intake, dict) or not isinstance(intake.get("petitioner"), dict):
        return data
    petitioner = intake["petitioner"]
    if not any(petitioner.get(k) for k in IDENTITY_FIELDS):
        return data
    shown = {"ref": petitioner.get("ref"), "count": petitioner.get("count", 1),
             "named": bool(petitioner.get("name")),
             "traceable": bool(petitioner.get("address") or petitioner.get("phone") or petitioner.get("id_number")),
             "withheld": True}
    return {**data, "intake": {**intake, "petitioner": shown}}


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


def shown_events(events: list[RecordedEvent]) -> list[RecordedEvent]:
    """`events` as they may be shown to anyone (`redact_petitioner` on each petition's first event). Only
    what is shown changes: the chain was verified on the stored data."""
    return [ev.model_copy(update={"data": redact_petitioner(ev.data)}) if ev.type == "PetitionReceived" else ev
            for ev in events]
