"""The `rule_sets` table: documents stored once under the digest their writer names them by, read back as they
are stored. What a digest is, and whether a document's content still hashes to it, is for the layer that knows
the documents (`activities.rules`, `domain.rulesets`): the store keeps rows and knows nothing of rules.

Written with INSERT .. ON CONFLICT DO NOTHING (a digest names one content, so a second writer of the same
document changes nothing); the table refuses UPDATE, DELETE and TRUNCATE (migration 0019).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any, Protocol

from .models import StoredDocument
from .pool import Pool
from .store import translate_errors

_INSERT = """
INSERT INTO rule_sets (digest, kind, content)
SELECT d, k, c FROM unnest($1::text[], $2::text[], $3::jsonb[]) AS t(d, k, c)
ON CONFLICT (digest) DO NOTHING
"""


class Document(Protocol):
    """What a stored document is given as: its digest, its kind and its content."""

    @property
    def digest(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def content(self) -> dict[str, Any]: ...


async def store(pool: Pool, docs: Iterable[Document]) -> None:
    """Store `docs` (those already stored are left as they are)."""
    unique = {d.digest: d for d in docs}
    if not unique:
        return
    with translate_errors():
        await pool.execute(_INSERT, list(unique), [d.kind for d in unique.values()],
                           [d.content for d in unique.values()])


async def fetch(pool: Pool, digests: Sequence[str]) -> list[StoredDocument]:
    """The stored documents among `digests`, as stored."""
    with translate_errors():
        rows = await pool.fetch("SELECT digest, kind, content FROM rule_sets WHERE digest = ANY($1::text[])",
                                list(digests))
    return [StoredDocument(digest=r["digest"], kind=r["kind"], content=r["content"]) for r in rows]


async def fetch_all(pool: Pool) -> list[StoredDocument]:
    """Every stored document, by digest."""
    with translate_errors():
        rows = await pool.fetch("SELECT digest, kind, content FROM rule_sets ORDER BY digest")
    return [StoredDocument(digest=r["digest"], kind=r["kind"], content=r["content"]) for r in rows]


async def each(pool: Pool) -> AsyncIterator[StoredDocument]:
    """Every stored document, by digest, read in one snapshot a few at a time (for a check of them all)."""
    with translate_errors():
        async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            async for row in conn.cursor("SELECT digest, kind, content FROM rule_sets ORDER BY digest", prefetch=50):
                yield StoredDocument(digest=row["digest"], kind=row["kind"], content=row["content"])
