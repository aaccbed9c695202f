"""What tamper evidence costs: a signed checkpoint of N stream heads (time and bytes), an inclusion proof, and
`verify` over 1,000,000 events, with the chain-only walk of the same events as the baseline in the same run.

    .venv/bin/python -m bench.integrity [--database-url URL] [--heads 10000,100000,1000000]
                                        [--streams 10000] [--events-per-stream 100] [--json out.json]

Each run makes its own database `bench_<random>` on the server and drops it at the end. The heads of the
checkpoint runs are rows of `streams` made by SQL (a checkpoint reads nothing else); the 1,000,000 events are
real events, each with its canonical form and chained hash computed by the store's own code, written in
batches (`unnest`), then their heads. See bench/README.md for the figures and what they mean.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import resource
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import in_new_database
from eventstore import EventStore, NewEvent, migrate
from eventstore.canonical import event_params
from eventstore.models import GENESIS_HASH
from integrity.checkpoints import CheckpointLog, public_key_file
from integrity.database import take_checkpoint, verify_against_checkpoint
from integrity.proofcheck import check_proof, load_public_key

from .append_throughput import event_data

_INSERT_EVENTS = """
    INSERT INTO events (stream_id, version, event_id, type, schema_version, occurred_at, actor, reason,
                        legal_basis, data, metadata, prev_hash, hash)
    SELECT s, v, e, t, sv, o, a, r, lb, d::jsonb, m::jsonb, p, h
      FROM unnest($1::text[], $2::integer[], $3::uuid[], $4::text[], $5::integer[], $6::timestamptz[], $7::text[],
                  $8::text[], $9::text[], $10::text[], $11::text[], $12::bytea[], $13::bytea[])
           AS x(s, v, e, t, sv, o, a, r, lb, d, m, p, h)
"""


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def checkpoint_costs(store: EventStore, sizes: Sequence[int], work: Path) -> list[dict[str, Any]]:
    """A checkpoint (first, then again with nothing moved, which compares every head with the first) and a
    proof, for each number of heads."""
    out = []
    for n in sizes:
        await store.pool.execute("TRUNCATE streams")
        await store.pool.execute(
            """INSERT INTO streams (stream_id, version, last_hash, prev_hash)
               SELECT 'hồ-sơ-' || lpad(i::text, 7, '0'), 1 + i % 40, sha256(int4send(i)), sha256(int4send(-i))
                 FROM generate_series(1, $1) AS i""", n)
        await store.pool.execute("ANALYZE streams")
        log = CheckpointLog(work / f"heads-{n}" / "checkpoints.log", work / "checkpoint.key")
        start = time.perf_counter()
        first = await take_checkpoint(store, log)
        first_s = time.perf_counter() - start
        start = time.perf_counter()
        await take_checkpoint(store, log)
        again_s = time.perf_counter() - start
        leaves_file = log.leaves_dir / str(first.checkpoint.fields["leaves"])
        start = time.perf_counter()
        proof = await asyncio.to_thread(log.proof, f"hồ-sơ-{n // 2:07d}")
        proof_s = time.perf_counter() - start
        key = load_public_key(public_key_file(log.key_file).read_bytes())
        start = time.perf_counter()
        check_proof(proof, key)
        check_ms = (time.perf_counter() - start) * 1000
        row = {
            "heads": n,
            "first_s": round(first_s, 3), "first_read_ms": round(first.read_ms),
            "first_sign_write_ms": round(first.sign_ms),
            "again_s": round(again_s, 3),
            "leaves_bytes": leaves_file.stat().st_size, "bytes_per_head": round(leaves_file.stat().st_size / n, 1),
            "log_line_bytes": len(first.checkpoint.line) + 1,
            "proof_s": round(proof_s, 3), "proof_bytes": len(json.dumps(proof)), "proof_check_ms": round(check_ms, 2),
            "audit_path": len(proof["audit_path"]), "peak_rss_mib": round(peak_rss_mib()),
        }
        print(f"  {n:>9,} heads: checkpoint {first_s:6.2f} s (read+compare {first.read_ms:5.0f} ms, sign+write "
              f"{first.sign_ms:5.0f} ms); again {again_s:6.2f} s; leaves {row['leaves_bytes']:>11,} B "
              f"({row['bytes_per_head']} B/head) + {row['log_line_bytes']} B of log; proof {proof_s:5.2f} s, "
              f"{row['proof_bytes']} B, checked in {check_ms:.2f} ms; peak RSS {row['peak_rss_mib']} MiB")
        out.append(row)
    await store.pool.execute("TRUNCATE streams")
    return out


async def seed_events(store: EventStore, streams: int, per_stream: int) -> float:
    """`streams` x `per_stream` real events with their chained hashes, and their heads; seconds taken."""
    start = time.perf_counter()
    t0 = datetime(2026, 1, 5, 1, 0, 0, 123456, tzinfo=UTC)
    batch_streams = max(1, 20_000 // per_stream)
    for first in range(0, streams, batch_streams):
        cols: list[list[Any]] = [[] for _ in range(13)]
        heads = []
        for s in range(first, min(streams, first + batch_streams)):
            stream_id = f"hồ-sơ-{s:07d}"
            prev = GENESIS_HASH
            before = GENESIS_HASH
            for v in range(1, per_stream + 1):
                event = NewEvent(event_id=uuid.uuid4(), type="Ghi nhận tiến độ", occurred_at=t0 + timedelta(minutes=v),
                                 actor="Ủy ban nhân dân huyện", reason="Cập nhật", legal_basis="Luật Khiếu nại 2011",
                                 data=event_data(s * per_stream + v), metadata={"command_id": f"c-{s}-{v}"})
                text, *fields = event_params(stream_id, v, event)
                h = hashlib.sha256(bytes.fromhex(prev) + text).hexdigest()
                for col, value in zip(cols, [stream_id, v, *fields, bytes.fromhex(prev), bytes.fromhex(h)],
                                      strict=True):
                    col.append(value)
                before, prev = prev, h
            heads.append((stream_id, per_stream, bytes.fromhex(prev), bytes.fromhex(before)))
        async with store.pool.acquire() as conn, conn.transaction():
            await conn.execute(_INSERT_EVENTS, *cols)
            await conn.executemany(
                "INSERT INTO streams (stream_id, version, last_hash, prev_hash) VALUES ($1, $2, $3, $4)", heads)
    await store.pool.execute("VACUUM ANALYZE events")
    await store.pool.execute("VACUUM ANALYZE streams")
    return time.perf_counter() - start


async def verify_costs(store: EventStore, streams: int, per_stream: int, work: Path) -> dict[str, Any]:
    total = streams * per_stream
    print(f"seeding {total:,} events in {streams:,} streams...")
    seeded = await seed_events(store, streams, per_stream)
    print(f"  seeded in {seeded:.0f} s")
    log = CheckpointLog(work / "events" / "checkpoints.log", work / "checkpoint.key")
    taken = await take_checkpoint(store, log)
    runs: dict[str, list[float]] = {"chain": [], "checkpoint": []}
    for _ in range(2):  # interleaved, baseline first
        start = time.perf_counter()
        plain = await store.verify()
        runs["chain"].append(time.perf_counter() - start)
        assert plain.ok and plain.events_checked == total, plain
        start = time.perf_counter()
        report, _ = await verify_against_checkpoint(store, log)
        runs["checkpoint"].append(time.perf_counter() - start)
        assert report.ok and report.events_checked == total, report
    # One event more in 1% of the streams, then the next checkpoint, which checks that each moved stream's
    # event at the signed version still has the signed hash.
    moved = max(1, streams // 100)
    for s in range(moved):
        await store.append(f"hồ-sơ-{s:07d}", per_stream, [NewEvent(
            event_id=uuid.uuid4(), type="Ghi nhận tiến độ", occurred_at=datetime.now(UTC), data=event_data(s))])
    start = time.perf_counter()
    await take_checkpoint(store, log)
    next_s = time.perf_counter() - start
    best = {k: min(v) for k, v in runs.items()}
    out = {
        "events": total, "streams": streams, "seed_s": round(seeded),
        "verify_chain_s": [round(x, 2) for x in runs["chain"]],
        "verify_checkpoint_s": [round(x, 2) for x in runs["checkpoint"]],
        "verify_chain_events_per_s": round(total / best["chain"]),
        "verify_checkpoint_events_per_s": round(total / best["checkpoint"]),
        "checkpoint_over_chain": round(best["checkpoint"] / best["chain"], 3),
        "first_checkpoint_s": round((taken.read_ms + taken.sign_ms) / 1000, 3),
        "next_checkpoint_moved": moved, "next_checkpoint_s": round(next_s, 3),
    }
    print(f"  verify, hash chains only:            {out['verify_chain_events_per_s']:>9,} events/s "
          f"({', '.join(f'{x:.1f}' for x in runs['chain'])} s)")
    print(f"  verify, chains and signed checkpoint: {out['verify_checkpoint_events_per_s']:>9,} events/s "
          f"({', '.join(f'{x:.1f}' for x in runs['checkpoint'])} s; x{out['checkpoint_over_chain']} the time)")
    print(f"  checkpoint of {streams:,} streams {out['first_checkpoint_s']} s; the next, {moved} moved: {next_s:.2f} s")
    return out


async def run(url: str, args: argparse.Namespace) -> dict[str, Any]:
    store = await EventStore.open(url, max_size=2)
    try:
        async with store.pool.acquire() as conn:
            await migrate(conn)
        with tempfile.TemporaryDirectory(prefix="bench-integrity-") as tmp:
            work = Path(tmp)
            print("checkpoint of N stream heads:")
            heads = await checkpoint_costs(store, [int(x) for x in args.heads.split(",")], work)
            verify = await verify_costs(store, args.streams, args.events_per_stream, work) if args.streams else {}
        return {"when": datetime.now(UTC).isoformat(), "load_average": os.getloadavg(), "checkpoint": heads,
                "verify": verify}
    finally:
        await store.close()


def _interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.integrity", description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL")
                        or "postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--heads", default="10000,100000,1000000", help="numbers of heads to checkpoint")
    parser.add_argument("--streams", type=int, default=10_000, help="streams of the verify run (0: no verify run)")
    parser.add_argument("--events-per-stream", type=int, default=100)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    out = in_new_database(args.database_url, lambda url: run(url, args))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2, ensure_ascii=False), encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
