"""Files a case holds (the scanned letter, evidence, signed decisions), the same for every kind of case that
takes them: the command that records one, its event, and the rules of a file's name.

The bytes are not here: the API stores them first, content-addressed (`eventstore.blobs`), then sends `attach`
with what it found of them (the media type sniffed from the content, never the one the client gave; the size;
the SHA-256). `AttachmentAdded` records that in the case's stream, so the stream's hash chain and the signed
checkpoints cover every file, and `danvan verify` can check the stored bytes against it.

Pure: standard library, pydantic and `domain` only.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, field_validator

from .common import Actor, DomainError, Event, Text, envelope, require

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
#: What a file is to the case.
Category = Literal["letter", "evidence", "decision", "other"]
CATEGORIES: tuple[str, ...] = ("letter", "evidence", "decision", "other")
#: The longest file name kept, in characters (most file systems allow 255 bytes; Vietnamese letters take 2-3).
NAME_MAX = 200
#: Characters no file name may hold: path separators, and what a header or a file system could misread.
NAME_FORBIDDEN = frozenset('/\\:*?"<>|')
#: The rules a name breaks, for the API's 422.
NAME_RULES = ("attachment.name_empty", "attachment.name_too_long", "attachment.name_path",
              "attachment.name_control", "attachment.name_reserved")


def name_fault(name: str) -> tuple[str, str] | None:
    """The rule a file name breaks and why, or None. The name is judged as given, after NFC."""
    if not name.strip():
        return "attachment.name_empty", "the file has no name"
    if len(name) > NAME_MAX:
        return "attachment.name_too_long", f"the file name has {len(name)} characters; at most {NAME_MAX}"
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn") for ch in name):
        return "attachment.name_control", "the file name holds a control or invisible formatting character"
    if any(ch in NAME_FORBIDDEN for ch in name):
        return "attachment.name_path", 'the file name holds a path separator or one of : * ? " < > |'
    if name.strip() in (".", "..") or name != name.strip() or name.endswith("."):
        return "attachment.name_reserved", "the file name starts or ends with a space, or ends with a dot"
    return None


def clean_name(name: str) -> str:
    """`name` in NFC, or `ValueError` naming the rule it breaks."""
    name = unicodedata.normalize("NFC", name)
    fault = name_fault(name)
    if fault is not None:
        raise ValueError(f"{fault[0]}: {fault[1]}")
    return name


class Attach(Text):
    """Record a file the API has stored: sent by the API's upload route, never by a client as JSON."""

    type: Literal["attach"] = "attach"
    reason: str | None = Field(default=None, max_length=2000)
    name: str = Field(min_length=1, max_length=NAME_MAX)
    media_type: str = Field(min_length=3, max_length=100, pattern=r"^[a-z0-9.+-]+/[a-z0-9.+-]+$")
    size: int = Field(ge=1)
    sha256: Sha256
    category: Category = "other"
    #: Stored encrypted (a denunciation's files): `stored` is the hash of the ciphertext blob.
    encrypted: bool = False
    stored: Sha256 | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return clean_name(value)


class AttachmentAdded(Event):
    """A file joined the case: its name (NFC), sniffed media type, size and SHA-256, what it is to the case, and
    where its bytes are (`stored`, the ciphertext's hash, when they are kept encrypted)."""

    name: str
    media_type: str
    size: int
    sha256: str
    category: str = "other"
    encrypted: bool = False
    stored: str | None = None


def decide_attach(attached: list[str], cmd: Attach, actor: Actor, now: datetime) -> list[Event]:
    """The event of `cmd` on a case that holds the files `attached` (their hashes); the same file twice is
    refused (`attachment.duplicate`): it is on the case already."""
    require(cmd.sha256 not in attached, "attachment.duplicate",
            f"the case holds this file already (sha256 {cmd.sha256})")
    if cmd.encrypted and cmd.stored is None:
        raise DomainError("attachment.stored", "an encrypted file names the blob of its ciphertext")
    return [AttachmentAdded(**envelope(cmd, actor, now), name=cmd.name, media_type=cmd.media_type, size=cmd.size,
                            sha256=cmd.sha256, category=cmd.category, encrypted=cmd.encrypted, stored=cmd.stored)]
