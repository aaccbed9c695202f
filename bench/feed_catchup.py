"""Feed catch-up: a reader paging `GET /v1/events?after=..&limit=..` through a real API process (uvicorn), against a
keyset `SELECT` of the same rows on the same database, in one run.

    .venv/bin/python -m bench.feed_catchup [--events 1000000] [--per-stream 100] [--limit 1000] [--rounds 2]
                                           [--json FILE] [--database-url URL]

What one run does:

* creates a database `bench_<random>` on the server, migrates it, and drops it at the end (also after an error or
  Ctrl-C); seeds `--events` real events (`--per-stream` per stream), each with its canonical form and chained hash
  computed by the store's own code, written in batches (`bench.integrity.seed_events`);
* starts one `danvan api` process on a free port of 127.0.0.1, on that database (no Temporal: the feed needs
  none), and issues an `admin` token, so the feed reads every event (the feed's plain statement);
* baseline: the feed's own keyset statement (`(tx_id, position) > cursor ... ORDER BY tx_id, position LIMIT n`,
  the same columns), run page after page over asyncpg from this process until the end, every row decoded;
* HTTP: one client (httpx, keep-alive) reading page after page, each answer parsed (orjson) for its
  `next_cursor`, until an empty page: what a system catching up does;
* the two alternate (`--rounds` each, baseline first); the best of each is compared: events a second of each,
  and the ratio HTTP / SELECT (target ≥ 0.5). Every run checks that each side read every event once.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from api.feed import _VISIBLE
from api.tokens import issue_token
from danvan.postgres import create_database, drop_database, redact, with_database
from eventstore import EventStore, migrate
from eventstore.store import _EVENT_COLUMNS

from .integrity import seed_events

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
#: The feed's plain statement (`api.feed.read_page` without a filter), as the baseline runs it.
KEYSET_SQL = (f"SELECT {_EVENT_COLUMNS} FROM events e WHERE (e.tx_id, e.position) > ($1::text::xid8, $2) "
              f"AND {_VISIBLE} ORDER BY e.tx_id, e.position LIMIT $3")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def keyset_pass(store: EventStore, limit: int) -> tuple[int, float]:
    """Every event, page after page, by the keyset statement: how many, and the seconds it took."""
    start = time.perf_counter()
    tx, position, seen = "0", 0, 0
    async with store.pool.acquire() as conn:
        statement = await conn.prepare(KEYSET_SQL)
        while True:
            rows = await statement.fetch(tx, position, limit)
            if not rows:
                break
            seen += len(rows)
            last = rows[-1]
            tx, position = str(last["transaction_id"]), last["position"]
    return seen, time.perf_counter() - start


async def http_pass(base: str, token: str, limit: int) -> tuple[int, float]:
    """Every event through `GET /v1/events`, page after page: how many, and the seconds it took."""
    start = time.perf_counter()
    seen, after = 0, None
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as http:
        while True:
            params: dict[str, Any] = {"limit": limit}
            if after is not None:
                params["after"] = after
            answer = await http.get("/v1/events", params=params)
            answer.raise_for_status()
            page = orjson.loads(answer.content)
            if not page["events"]:
                break
            seen += len(page["events"])
            after = page["next_cursor"]
    return seen, time.perf_counter() - start


def start_api(url: str, port: int, home: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": url, "DANVAN_API_HOST": "127.0.0.1", "DANVAN_API_PORT": str(port),
           "DANVAN_HOME": str(home), "DANVAN_LOG_LEVEL": "WARNING", "TEMPORAL_ADDRESS": "127.0.0.1:1",
           "DANVAN_SECRET_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "danvan.cli", "api"], env=env, stdout=out,
                                stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)


async def wait_healthy(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=2) as http:
        for _ in range(300):
            if proc.poll() is not None:
                text = await asyncio.to_thread(log.read_text, errors="replace")
                raise RuntimeError(f"the API ended at start:\n{text[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get("/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError("the API did not answer /healthz in 30 s")


async def run(url: str, args: argparse.Namespace) -> dict[str, Any]:
    store = await EventStore.open(url, max_size=4)
    proc: subprocess.Popen[bytes] | None = None
    try:
        async with store.pool.acquire() as conn:
            await migrate(conn)
        streams = max(1, args.events // args.per_stream)
        total = streams * args.per_stream
        print(f"seeding {total:,} events in {streams:,} streams...")
        seeded = await seed_events(store, streams, args.per_stream)
        print(f"  seeded in {seeded:.0f} s")
        token = await issue_token(store.pool, "admin", None, "bench-feed")
        with tempfile.TemporaryDirectory(prefix="bench-feed-") as tmp:
            port = free_port()
            log = Path(tmp) / "api.log"
            proc = start_api(url, port, Path(tmp), log)
            base = f"http://127.0.0.1:{port}"
            await wait_healthy(base, proc, log)
            runs: dict[str, list[float]] = {"select": [], "http": []}
            for n in range(args.rounds):
                seen, seconds = await keyset_pass(store, args.limit)
                assert seen == total, (seen, total)
                runs["select"].append(seconds)
                print(f"  round {n + 1}: keyset SELECT {total / seconds:>10,.0f} events/s ({seconds:.1f} s)")
                seen, seconds = await http_pass(base, token, args.limit)
                assert seen == total, (seen, total)
                runs["http"].append(seconds)
                print(f"  round {n + 1}: GET /v1/events {total / seconds:>10,.0f} events/s ({seconds:.1f} s)")
        best = {k: min(v) for k, v in runs.items()}
        out = {
            "when": datetime.now(UTC).isoformat(), "load_average": os.getloadavg(), "events": total,
            "streams": streams, "limit": args.limit, "seed_s": round(seeded),
            "select_s": [round(x, 2) for x in runs["select"]], "http_s": [round(x, 2) for x in runs["http"]],
            "select_events_per_s": round(total / best["select"]), "http_events_per_s": round(total / best["http"]),
            "ratio": round(best["select"] / best["http"], 3),
        }
        print(f"keyset SELECT:  {out['select_events_per_s']:>10,} events/s")
        print(f"GET /v1/events: {out['http_events_per_s']:>10,} events/s")
        print(f"ratio HTTP/SELECT: {out['ratio']:.2f} (target >= 0.5: {'met' if out['ratio'] >= 0.5 else 'NOT met'})"
              f"; load average {out['load_average'][0]:.1f}")
        return out
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        await store.close()


def _interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.feed_catchup", description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL") or DEFAULT_URL)
    parser.add_argument("--events", type=int, default=1_000_000, help="events to seed (default 1,000,000)")
    parser.add_argument("--per-stream", type=int, default=100, help="events per stream")
    parser.add_argument("--limit", type=int, default=1000, help="events a page (the feed's largest: 1,000)")
    parser.add_argument("--rounds", type=int, default=2, help="passes of each, alternating, baseline first")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    if not 1 <= args.limit <= 1000 or args.events < 1 or args.per_stream < 1 or args.rounds < 1:
        parser.error("--limit is 1 to 1000; --events, --per-stream and --rounds at least 1")
    signal.signal(signal.SIGTERM, _interrupt)
    name = f"bench_{secrets.token_hex(6)}"

    async def go() -> dict[str, Any]:
        url = await create_database(args.database_url, name)
        try:
            return await run(url, args)
        finally:
            await drop_database(args.database_url, name)

    print(f"database {redact(with_database(args.database_url, name))}")
    out = asyncio.run(go())
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
