"""A case's files on the API's side: an upload checked, stored, listed and read back.

An upload is held to the settings before anything is stored: its name (NFC, no path, no control character, at
most 200 characters: `domain.attachments.name_fault`), its size (`DANVAN_ATTACHMENT_MAX_BYTES`: 413
`attachment.too_large`; an empty file is 422 `attachment.empty`) and its media type, sniffed from its first
bytes by the `filetype` library (what the client declares is ignored) and held to `DANVAN_ATTACHMENT_TYPES`
(415 `attachment.type_not_allowed`, naming the type found). The bytes are then stored content-addressed
(`eventstore.blobs`) BEFORE the case is sent `attach`: a command the case refuses leaves a blob nobody names,
which is harmless (the same bytes sent again are the same blob).

A denunciation's files (a case under the denunciation regime, `api.identities.under_denunciation_regime`, when
the file comes) are stored encrypted, like the denouncer's identity: each under a data key of its own
(AES-256-GCM, in segments of 64 KiB so that neither writing nor reading holds a file whole), the key wrapped by
a key-encryption key derived from the installation's secret, in `attachment_keys` (migration 0017) with the ref
of the identity the case carries. Erasing that identity destroys these keys (`erase_for_ref`): a denunciation's
letter names its author. The files stay case content: whoever may read the case may read them, every read of a
denunciation's file recorded in `case_reads`; encryption keeps them from whoever reads the database.
"""

from __future__ import annotations

import hashlib
import json
import struct
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import quote

import filetype
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap, aes_key_wrap
from pydantic import BaseModel

from danvan.keys import ATTACHMENT_KEK_LABEL, derive_key, key_id
from danvan.settings import Settings
from domain.attachments import Category, clean_name, name_fault
from eventstore import Pool
from eventstore.blobs import BlobStore

from .errors import ApiError, FieldError

#: Bytes read from an upload at a time.
PIECE = 64 * 1024
#: Plaintext bytes per encrypted segment; each is sealed with its index and whether it is the last.
SEGMENT = 64 * 1024
TAG = 16
#: How many first bytes the sniffer looks at (`filetype` reads at most 8,192).
HEAD = 8192
#: Media types a browser shows itself: served `inline`; the rest `attachment` (downloaded).
INLINE = frozenset({"application/pdf", "image/jpeg", "image/png"})


class Readable(Protocol):
    """An uploaded file as Starlette hands it over (spooled to disk past 1 MiB)."""

    filename: str | None

    async def read(self, size: int = -1) -> bytes: ...

    async def seek(self, offset: int) -> None: ...


@dataclass(frozen=True)
class Checked:
    """An upload that passed the rules: its name, sniffed type, size and SHA-256."""

    name: str
    media_type: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Stored:
    """Where a checked upload's bytes went: the blob of its ciphertext (`stored`) when encrypted."""

    checked: Checked
    encrypted: bool
    stored: str | None


class AttachmentView(BaseModel):
    """One file of a case, as `GET /v1/cases/{id}/attachments` lists it."""

    sha256: str
    name: str
    media_type: str
    size: int
    category: str
    encrypted: bool
    added_at: datetime
    added_by: str
    version: int
    href: str


class AttachmentList(BaseModel):
    case_id: str
    attachments: list[AttachmentView]


def sniff(head: bytes) -> str | None:
    """The media type the content's first bytes show (`filetype`'s signatures), or None when none matches."""
    kind = filetype.guess(head)
    return str(kind.mime) if kind is not None else None


def _refused(status: int, rule: str, field: str, message: str) -> ApiError:
    return ApiError(status, rule, message, fields=[FieldError(field=field, rule=rule, message=message)])


def too_large(limit: int, field: str = "file") -> ApiError:
    return _refused(413, "attachment.too_large", field,
                    f"a file may have at most {limit} bytes (DANVAN_ATTACHMENT_MAX_BYTES)")


def check_name(raw: str | None, field: str) -> str:
    """The upload's file name in NFC, or 422 naming the rule it breaks."""
    try:
        return clean_name(raw or "")
    except ValueError:
        fault = name_fault(raw or "") or ("attachment.name_empty", "the file has no name")
        raise _refused(422, fault[0], field, fault[1]) from None


async def check_upload(upload: Readable, settings: Settings, field: str = "file") -> Checked:
    """Read the upload once (it is spooled locally): its size within the limit, its sniffed type allowed, its
    SHA-256; 413, 415 or 422 with the rule otherwise. The upload is left at its start."""
    name = check_name(upload.filename, f"{field}.filename")
    digest, size, head = hashlib.sha256(), 0, b""
    while piece := await upload.read(PIECE):
        if len(head) < HEAD:
            head += piece[:HEAD - len(head)]
        digest.update(piece)
        size += len(piece)
        if size > settings.attachment_max_bytes:
            raise too_large(settings.attachment_max_bytes, field)
    await upload.seek(0)
    if size == 0:
        raise _refused(422, "attachment.empty", field, "the file is empty")
    media_type = sniff(head)
    if media_type not in settings.attachment_types:
        found = media_type or "unknown (no known signature)"
        raise _refused(415, "attachment.type_not_allowed", field,
                       f"the file's content is {found}; allowed: {', '.join(settings.attachment_types)} "
                       "(DANVAN_ATTACHMENT_TYPES; the type is read from the content, not from the request)")
    return Checked(name=name, media_type=media_type, size=size, sha256=digest.hexdigest())


async def _pieces(upload: Readable) -> AsyncIterator[bytes]:
    while piece := await upload.read(PIECE):
        yield piece


def _aad(index: int, final: bool) -> bytes:
    return b"danvan attachment v1" + struct.pack(">Q?", index, final)


def _nonce(index: int) -> bytes:
    return index.to_bytes(12, "big")  # a fresh key per file: a counter never repeats under it


async def seal_stream(key: bytes, pieces: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The pieces' bytes AES-256-GCM encrypted in segments of `SEGMENT`, each bound to its index and to whether it
    is the last, so that segments cannot be reordered, dropped or cut off unnoticed."""
    aead, buffer, index = AESGCM(key), b"", 0
    async for piece in pieces:
        buffer += piece
        while len(buffer) > SEGMENT:  # keep the last segment back: only the end of the stream says it is last
            segment, buffer = buffer[:SEGMENT], buffer[SEGMENT:]
            yield aead.encrypt(_nonce(index), segment, _aad(index, False))
            index += 1
    yield aead.encrypt(_nonce(index), buffer, _aad(index, True))


class AttachmentAltered(Exception):
    """A stored file does not decrypt: its ciphertext was changed, cut or reordered."""


async def open_stream(key: bytes, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The plaintext of `seal_stream`'s output, segment by segment; `AttachmentAltered` when it does not verify."""
    aead, buffer, index, size = AESGCM(key), b"", 0, SEGMENT + TAG
    try:
        async for chunk in chunks:
            buffer += chunk
            while len(buffer) > size:
                segment, buffer = buffer[:size], buffer[size:]
                yield aead.decrypt(_nonce(index), segment, _aad(index, False))
                index += 1
        yield aead.decrypt(_nonce(index), buffer, _aad(index, True))
    except InvalidTag:
        raise AttachmentAltered(f"segment {index} does not verify") from None


class AttachmentErased(Exception):
    """The file's key was destroyed with the identity of its case (crypto-shredding)."""

    def __init__(self, erased_at: datetime) -> None:
        super().__init__(erased_at.isoformat())
        self.erased_at = erased_at


class AttachmentFiles:
    """Stores and reads the bytes of case files, encrypting a denunciation's (see the module)."""

    def __init__(self, pool: Pool, blobs: BlobStore, secret: bytes) -> None:
        self.pool = pool
        self.blobs = blobs
        self.kek = derive_key(secret, ATTACHMENT_KEK_LABEL)
        self.kek_id = key_id(self.kek)

    async def store(self, upload: Readable, checked: Checked, *, case_id: str, encrypt: bool,
                    ref: str | None) -> Stored:
        """Store the bytes of a checked upload: as they are, or encrypted for `case_id` (once per case and file:
        the same file again reuses its ciphertext)."""
        if not encrypt:
            put = await self.blobs.put_stream(_pieces(upload))
            if put.hash != checked.sha256:  # the spooled file changed between the two readings
                raise ApiError(409, "attachment.changed", "the file changed while it was being stored; send it again")
            return Stored(checked, encrypted=False, stored=None)
        known = await self.pool.fetchval(
            "SELECT stored FROM attachment_keys WHERE case_id = $1 AND sha256 = $2", case_id, checked.sha256)
        if known is not None:
            return Stored(checked, encrypted=True, stored=str(known))
        data_key = AESGCM.generate_key(bit_length=256)
        put = await self.blobs.put_stream(seal_stream(data_key, _pieces(upload)))
        await self.pool.execute(
            "INSERT INTO attachment_keys (case_id, sha256, stored, ref, wrapped_key, kek_id) "
            "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (case_id, sha256) DO NOTHING",
            case_id, checked.sha256, put.hash, ref, aes_key_wrap(self.kek, data_key), self.kek_id)
        stored = await self.pool.fetchval(  # a concurrent upload of the same file may have won: use its key
            "SELECT stored FROM attachment_keys WHERE case_id = $1 AND sha256 = $2", case_id, checked.sha256)
        return Stored(checked, encrypted=True, stored=str(stored))

    async def open(self, case_id: str, data: dict[str, Any]) -> AsyncIterator[bytes]:
        """The bytes of the file an `AttachmentAdded` event of `case_id` records (`data`), chunk by chunk.
        `AttachmentErased` when its key was destroyed; `BlobNotFound` when its bytes are gone."""
        sha256 = str(data["sha256"])
        if not data.get("encrypted"):
            return self.blobs.open(sha256)
        row = await self.pool.fetchrow(
            "SELECT stored, wrapped_key, erased_at FROM attachment_keys WHERE case_id = $1 AND sha256 = $2",
            case_id, sha256)
        if row is None:
            raise LookupError(f"no key for {sha256} of {case_id}")
        if row["erased_at"] is not None:
            raise AttachmentErased(row["erased_at"])
        key = aes_key_unwrap(self.kek, row["wrapped_key"])
        return open_stream(key, self.blobs.open(str(row["stored"])))


async def erase_for_ref(conn: Any, ref: str) -> int:
    """Destroy the keys of the files stored encrypted for the cases that carry the identity `ref` (within the
    identity's erasure transaction, on its connection). The number of files made unreadable."""
    result: str = await conn.execute(
        "UPDATE attachment_keys SET wrapped_key = NULL, kek_id = NULL, erased_at = now() "
        "WHERE ref = $1 AND erased_at IS NULL", ref)
    return int(result.rsplit(" ", 1)[-1])


_LIST = ("SELECT version, occurred_at, actor, data FROM events WHERE stream_id = $1 AND type = 'AttachmentAdded' "
         "ORDER BY version")


async def list_attachments(pool: Pool, case_id: str, href: str) -> list[AttachmentView]:
    """The files of a case, in the order they came, from its `AttachmentAdded` events (`href`: where each is
    read, with `{sha256}` in it)."""
    out = []
    for row in await pool.fetch(_LIST, case_id):
        data = row["data"] if isinstance(row["data"], dict) else json.loads(row["data"])
        out.append(AttachmentView(
            sha256=data["sha256"], name=data["name"], media_type=data["media_type"], size=data["size"],
            category=data.get("category", "other"), encrypted=bool(data.get("encrypted")),
            added_at=row["occurred_at"], added_by=row["actor"] or "", version=row["version"],
            href=href.format(sha256=data["sha256"])))
    return out


async def find_attachment(pool: Pool, case_id: str, sha256: str) -> tuple[int, dict[str, Any]] | None:
    """The version and data of the event that added the file `sha256` to `case_id`, or None."""
    row = await pool.fetchrow(
        "SELECT version, data FROM events WHERE stream_id = $1 AND type = 'AttachmentAdded' "
        "AND data->>'sha256' = $2 ORDER BY version LIMIT 1", case_id, sha256)
    if row is None:
        return None
    data = row["data"] if isinstance(row["data"], dict) else json.loads(row["data"])
    return int(row["version"]), data


def content_disposition(name: str, media_type: str) -> str:
    """`inline` for what a browser shows itself, else `attachment`; the name as RFC 6266 / 5987 give it: an ASCII
    fallback, and the NFC name in UTF-8 (`filename*`)."""
    plain = unicodedata.normalize("NFKD", name.replace("đ", "d").replace("Đ", "D"))
    plain = "".join(ch for ch in plain if not unicodedata.combining(ch))  # Vietnamese without its marks
    fallback = "".join(ch if 0x20 <= ord(ch) < 0x7F and ch not in '"\\%' else "_" for ch in plain)
    how = "inline" if media_type in INLINE else "attachment"
    return f"{how}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def file_headers(data: dict[str, Any]) -> dict[str, str]:
    """The headers of a file's bytes: its sniffed type, its name, its size, and that the type is not to be
    guessed again, nor the bytes kept by a cache."""
    return {
        "Content-Type": str(data["media_type"]),
        "Content-Disposition": content_disposition(str(data["name"]), str(data["media_type"])),
        "Content-Length": str(data["size"]),
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-store",
        "ETag": f'"{data["sha256"]}"',
    }


def category_of(value: str | None) -> Category:
    """The file's category from a form field (default `other`); 422 `attachment.category` otherwise."""
    from domain.attachments import CATEGORIES

    if value is None or value == "":
        return "other"
    if value not in CATEGORIES:
        raise _refused(422, "attachment.category", "category",
                       f"the category is one of {', '.join(CATEGORIES)}, not {value!r}")
    return value  # type: ignore[return-value]
