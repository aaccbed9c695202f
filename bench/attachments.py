"""How to keep attachments' bytes in PostgreSQL: chunked `bytea` rows (`eventstore.blobs`, what danvan uses)
against large objects (`pg_largeobject`), written and read in the same run on the same server.

    .venv/bin/python -m bench.attachments [--database-url URL] [--sizes 100000,1000000,10000000]
                                          [--files 20,10,4] [--rounds 3] [--json out.json]

Each run makes its own database `bench_<random>` on the server and drops it at the end. Each file is random
bytes (incompressible, as scanned PDFs and JPEGs are), streamed in 64 KiB pieces as an upload arrives; both
ways hash the bytes as they pass (SHA-256 names the blob) and store them in 256 KiB chunks:

- `rows`: `PostgresBlobStore.put_stream` (one `INSERT` per chunk into `blob_chunks`, then the `blobs` row, in one
  transaction) and `open` (one `SELECT` per chunk);
- `large_object`: `lo_create`, one `lo_put(oid, offset, chunk)` per chunk and a row naming the oid, in one
  transaction; read with one `lo_get(oid, offset, length)` per chunk.

The rounds alternate the two ways (rows first in odd rounds, large objects first in even ones); the best round
of each is reported, in MB/s (10^6 bytes), with the ratio rows / large objects. See bench/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import signal
import sys
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import in_new_database
from eventstore import EventStore, migrate
from eventstore.blobs import CHUNK_SIZE, PostgresBlobStore, rechunk
from eventstore.pool import Pool

PIECE = 64 * 1024

_LO_TABLE = """
    CREATE TABLE IF NOT EXISTS bench_lo_blobs (hash text PRIMARY KEY, oid oid NOT NULL, size bigint NOT NULL)
"""


async def pieces(data: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(data), PIECE):
        yield data[i:i + PIECE]


class LargeObjects:
    """The same promises as `PostgresBlobStore`, on large objects."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def put_stream(self, chunks: AsyncIterator[bytes]) -> str:
        digest = hashlib.sha256()
        async with self.pool.acquire() as conn, conn.transaction():
            oid = await conn.fetchval("SELECT lo_create(0)")
            offset, left = 0, b""
            async for piece in chunks:
                digest.update(piece)
                full, left = rechunk([left, piece])
                for chunk in full:
                    await conn.execute("SELECT lo_put($1, $2, $3)", oid, offset, chunk)
                    offset += len(chunk)
            if left:
                await conn.execute("SELECT lo_put($1, $2, $3)", oid, offset, left)
                offset += len(left)
            await conn.execute("INSERT INTO bench_lo_blobs (hash, oid, size) VALUES ($1, $2, $3) "
                               "ON CONFLICT (hash) DO NOTHING", digest.hexdigest(), oid, offset)
        return digest.hexdigest()

    async def open(self, hash: str) -> AsyncIterator[bytes]:
        row = await self.pool.fetchrow("SELECT oid, size FROM bench_lo_blobs WHERE hash = $1", hash)
        async with self.pool.acquire() as conn, conn.transaction():  # lo_get needs no transaction; one is cheap
            for offset in range(0, row["size"], CHUNK_SIZE):
                yield bytes(await conn.fetchval("SELECT lo_get($1, $2, $3)", row["oid"], offset, CHUNK_SIZE))


async def _read_all(chunks: AsyncIterator[bytes]) -> int:
    digest, size = hashlib.sha256(), 0
    async for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
    return size


async def one_way(name: str, store: Any, files: list[bytes]) -> dict[str, float]:
    """Write every file, then read every file back: seconds of each."""
    start = time.perf_counter()
    hashes = []
    for data in files:
        put = await store.put_stream(pieces(data))
        hashes.append(put if isinstance(put, str) else put.hash)
    write_s = time.perf_counter() - start
    start = time.perf_counter()
    read = 0
    for h in hashes:
        read += await _read_all(store.open(h))
    read_s = time.perf_counter() - start
    assert read == sum(len(f) for f in files), name
    return {"write_s": write_s, "read_s": read_s}


async def measure(pool: Pool, size: int, count: int, rounds: int) -> dict[str, Any]:
    ways: dict[str, Any] = {"rows": PostgresBlobStore(pool), "large_object": LargeObjects(pool)}
    best: dict[str, dict[str, float]] = {w: {"write_s": float("inf"), "read_s": float("inf")} for w in ways}
    for r in range(rounds):
        files = [secrets.token_bytes(size) for _ in range(count)]  # new bytes each round: every write is new
        order = list(ways) if r % 2 == 0 else list(reversed(ways))
        for way in order:
            took = await one_way(way, ways[way], files)
            for k in took:
                best[way][k] = min(best[way][k], took[k])
        await pool.execute("CHECKPOINT")
    total = size * count / 1e6
    out: dict[str, Any] = {"size": size, "files": count}
    for way, b in best.items():
        out[way] = {"write_mb_s": round(total / b["write_s"], 1), "read_mb_s": round(total / b["read_s"], 1)}
    out["rows_over_lo_write"] = round(out["rows"]["write_mb_s"] / out["large_object"]["write_mb_s"], 2)
    out["rows_over_lo_read"] = round(out["rows"]["read_mb_s"] / out["large_object"]["read_mb_s"], 2)
    print(f"  {size:>10,} B x {count:>3}: rows write {out['rows']['write_mb_s']:7.1f} MB/s, read "
          f"{out['rows']['read_mb_s']:7.1f} MB/s | large objects write {out['large_object']['write_mb_s']:7.1f} "
          f"MB/s, read {out['large_object']['read_mb_s']:7.1f} MB/s | rows/lo: write x{out['rows_over_lo_write']}, "
          f"read x{out['rows_over_lo_read']}")
    return out


async def run(url: str, args: argparse.Namespace) -> dict[str, Any]:
    store = await EventStore.open(url, max_size=2)
    try:
        async with store.pool.acquire() as conn:
            await migrate(conn)
        await store.pool.execute(_LO_TABLE)
        sizes = [int(x) for x in args.sizes.split(",")]
        counts = [int(x) for x in args.files.split(",")]
        print(f"chunks of {CHUNK_SIZE} B, pieces of {PIECE} B, best of {args.rounds} rounds:")
        results = [await measure(store.pool, s, n, args.rounds) for s, n in zip(sizes, counts, strict=True)]
        return {"when": datetime.now(UTC).isoformat(), "load_average": os.getloadavg(), "results": results}
    finally:
        await store.close()


def _interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.attachments", description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL")
                        or "postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--sizes", default="100000,1000000,10000000", help="file sizes in bytes")
    parser.add_argument("--files", default="40,20,4", help="files of each size per round")
    parser.add_argument("--rounds", type=int, default=3)
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
