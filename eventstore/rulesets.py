"""The `rule_sets` table: rule documents stored once by digest (`domain.rulesets`), read back checked.

Written with INSERT .. ON CONFLICT DO NOTHING (a digest names one content, so a second writer of the same
document changes nothing); the table refuses UPDATE, DELETE and TRUNCATE (migration 0019). A row whose
content no longer hashes to its digest is refused by `fetch` and reported by `check`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from domain.common import content_digest
from domain.rulesets import RuleDigestMismatch, RuleDocument

from .models import BrokenRuleSet
from .pool import Pool
from .store import translate_errors

_INSERT = """
INSERT INTO rule_sets (digest, kind, content)
SELECT d, k, c FROM unnest($1::text[], $2::text[], $3::jsonb[]) AS t(d, k, c)
ON CONFLICT (digest) DO NOTHING
"""


async def store(pool: Pool, docs: Iterable[RuleDocument]) -> None:
    """Store `docs` (those already stored are left as they are)."""
    unique = {d.digest: d for d in docs}
    if not unique:
        return
    with translate_errors():
        await pool.execute(_INSERT, list(unique), [d.kind for d in unique.values()],
                           [d.content for d in unique.values()])


async def fetch(pool: Pool, digests: Sequence[str]) -> list[RuleDocument]:
    """The stored documents among `digests`, each checked (`RuleDigestMismatch` for an altered one)."""
    with translate_errors():
        rows = await pool.fetch("SELECT digest, kind, content FROM rule_sets WHERE digest = ANY($1::text[])",
                                list(digests))
    docs = [RuleDocument(kind=r["kind"], digest=r["digest"], content=r["content"]) for r in rows]
    for doc in docs:
        found = content_digest(doc.content)
        if found != doc.digest:
            raise RuleDigestMismatch(doc.digest, found)
    return docs


async def fetch_all(pool: Pool) -> tuple[list[RuleDocument], list[BrokenRuleSet]]:
    """Every stored document that hashes to its digest, and those that do not (left out)."""
    with translate_errors():
        rows = await pool.fetch("SELECT digest, kind, content FROM rule_sets ORDER BY digest")
    docs, broken = [], []
    for r in rows:
        found = content_digest(r["content"])
        if found == r["digest"]:
            docs.append(RuleDocument(kind=r["kind"], digest=r["digest"], content=r["content"]))
        else:
            broken.append(BrokenRuleSet(digest=r["digest"], kind=r["kind"], problem=f"hashes to {found}"))
    return docs, broken


async def check(pool: Pool) -> tuple[int, list[BrokenRuleSet]]:
    """How many rule documents are stored, and every one whose content does not hash to its digest."""
    broken: list[BrokenRuleSet] = []
    count = 0
    with translate_errors():
        async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            async for row in conn.cursor("SELECT digest, kind, content FROM rule_sets ORDER BY digest", prefetch=50):
                count += 1
                found = content_digest(row["content"])
                if found != row["digest"]:
                    broken.append(BrokenRuleSet(digest=row["digest"], kind=row["kind"], problem=(
                        f"the stored content hashes to {found}, not to its digest: the document was altered")))
    return count, broken
