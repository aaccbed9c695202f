"""The database side of checkpoints: read every stream head, take a checkpoint, verify against the latest.

Reading the heads is one statement over `streams` (one row per case, in one snapshot): at a province's scale,
10^5 to 10^6 rows, read in a few seconds at most. Before signing, the heads are compared with the previous
checkpoint (`checkpoints.compare_heads`); for the streams that moved on since, one more statement checks
that their event at the checkpointed version still carries the checkpointed hash.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from eventstore import EventStore, VerifyReport

from .checkpoints import Checkpoint, CheckpointLog, Leaf, TamperDetected, compare_heads, sort_leaves


@dataclass(frozen=True)
class Taken:
    checkpoint: Checkpoint
    read_ms: float
    sign_ms: float


async def read_heads(store: EventStore) -> list[Leaf]:
    rows = await store.pool.fetch("SELECT stream_id, version, encode(last_hash, 'hex') AS h FROM streams")
    return sort_leaves([Leaf(r["stream_id"], r["version"], r["h"]) for r in rows])


@contextmanager
def _no_collection() -> Iterator[None]:
    """The cyclic garbage collector off for the while: a checkpoint makes a million tuples at a province's
    scale, none in a cycle, and each full collection would walk them all again (at 10^6 heads that is most of
    the time a checkpoint takes). Reference counting still frees everything."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


async def take_checkpoint(store: EventStore, log: CheckpointLog) -> Taken:
    """Sign a checkpoint of every stream head now, unless the heads contradict the last one
    (`TamperDetected`, naming each stream; nothing is written then)."""
    with _no_collection():
        return await _take(store, log)


async def _take(store: EventStore, log: CheckpointLog) -> Taken:
    start = time.perf_counter()
    heads = await read_heads(store)
    # The log's files are read and written in a thread: the regular checkpoint shares its loop with nothing,
    # but a leaves file of 10^6 streams takes a while.
    last = await asyncio.to_thread(log.latest)
    if last is not None:
        current = {h.stream_id: (h.version, h.head_hash) for h in heads}
        problems, moved = compare_heads(await asyncio.to_thread(log.leaves, last), current)
        if moved:
            rows = await store.pool.fetch(
                """SELECT s.stream_id, s.version, encode(e.hash, 'hex') AS h
                     FROM unnest($1::text[], $2::integer[]) AS s(stream_id, version)
                     LEFT JOIN events e ON e.stream_id = s.stream_id AND e.version = s.version""",
                [m.stream_id for m in moved],
                [m.version for m in moved],
            )
            signed = {m.stream_id: m.head_hash for m in moved}
            for r in rows:
                if r["h"] is None:
                    problems.append((r["stream_id"], r["version"],
                                     f"missing: version {r['version']} was signed, the database has no such event"))
                elif r["h"] != signed[r["stream_id"]]:
                    problems.append((r["stream_id"], r["version"],
                                     f"rewritten: version {r['version']} is not the event signed in checkpoint "
                                     f"{last.seq}"))
        if problems:
            raise TamperDetected(sorted(problems))
    read_ms = (time.perf_counter() - start) * 1000
    start = time.perf_counter()
    checkpoint = await asyncio.to_thread(log.append, heads)
    return Taken(checkpoint, read_ms, (time.perf_counter() - start) * 1000)


async def verify_against_checkpoint(
    store: EventStore, log: CheckpointLog, stream_id: str | None = None
) -> tuple[VerifyReport, Checkpoint | None]:
    """`EventStore.verify` with the latest checkpoint's heads (when there is one) as what each stream must
    still hold, and, for the whole store, every stored rule document against its digest. Raises
    `CheckpointError` when the log or its leaves are not what was signed."""
    checkpoint = await asyncio.to_thread(log.latest)
    if checkpoint is None:
        report = await store.verify(stream_id)
    else:
        leaves = await asyncio.to_thread(log.leaves, checkpoint)
        signed = {leaf.stream_id: (leaf.version, leaf.head_hash) for leaf in leaves}
        label = f"checkpoint {checkpoint.seq} of {checkpoint.time}"
        report = await store.verify(stream_id, signed=signed, label=label)
    if stream_id is None:
        report = await with_rule_documents(store, report)
    return report, checkpoint


async def with_rule_documents(store: EventStore, report: VerifyReport) -> VerifyReport:
    """`report` with the check of every stored rule document (`activities.rules.check_rule_documents`)."""
    from activities.rules import check_rule_documents

    count, broken = await check_rule_documents(store)
    return report.model_copy(update={"rule_sets_checked": count, "broken_rule_sets": broken,
                                     "ok": report.ok and not broken})
