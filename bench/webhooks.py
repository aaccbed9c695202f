"""Webhooks: commit-to-delivery latency with cases flowing at a steady rate, and the delivery rate when a
subscription catches up a backlog.

    .venv/bin/python -m bench.webhooks [--quick] [--rate 50] [--seconds 60] [--backlog 100000] [--batch 100]
                                       [--json FILE] [--database-url URL]

What one run does:

* creates a database `bench_<random>` on the server, migrates it, and drops it at the end (also after an error
  or Ctrl-C); starts its own in-memory Temporal dev server (the venv's `temporal` binary) and one `danvan worker`
  process on it (this checkout's code), whose `DANVAN_WEBHOOK_ALLOW_HOSTS` lets it call the receiver;
* serves a receiver on 127.0.0.1 in this process (asyncio streams, HTTP/1.1 keep-alive, answers 204 at once)
  that notes the arrival time of each `webhook-id`;
* latency: one subscription (an admin's, no filter) delivering as events come; a writer opens `--rate` cases a
  second (one event each, `EventStore.append` with its `cases` row, as a petition's receipt writes it) for
  `--seconds`; the latency of an event is its arrival at the receiver minus the moment its append returned
  (both on this process's clock);
* backlog: a second subscription, made paused; `--backlog` events are appended (100 events a transaction, 100
  cases at a time), then it is resumed and the time until the receiver has all of them gives the rate;
* checks that every event arrived, each case's in order, and reports repeats.
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
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from danvan.postgres import create_database, drop_database, redact, with_database
from eventstore import CaseRow, EventStore, NewEvent, migrate

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
TASK_QUEUE = "danvan"


@dataclass
class Arrivals:
    """What the receiver saw: the first arrival of each id, per path, and how many requests."""

    first: dict[str, dict[str, float]] = field(default_factory=dict)
    order: dict[str, list[tuple[str, int]]] = field(default_factory=dict)  # path -> (case id, version)
    requests: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)


async def serve_receiver(arrivals: Arrivals) -> tuple[asyncio.Server, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                path = line.split(b" ")[1].decode()
                length, msg_id = 0, ""
                while True:
                    header = await reader.readline()
                    if header in (b"\r\n", b""):
                        break
                    name, _, value = header.decode("latin-1").partition(":")
                    name = name.strip().lower()
                    if name == "content-length":
                        length = int(value)
                    elif name == "webhook-id":
                        msg_id = value.strip()
                body = await reader.readexactly(length)
                now = time.time()
                arrivals.requests += 1
                seen = arrivals.first.setdefault(path, {})
                if msg_id not in seen:
                    seen[msg_id] = now
                    data = json.loads(body)["data"]
                    arrivals.order.setdefault(path, []).append((data["case_id"], data["version"]))
                arrivals.changed.set()
                writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, int(server.sockets[0].getsockname()[1])


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def wait_for(arrivals: Arrivals, path: str, wanted: set[str], timeout: float) -> float:
    """Wait until every id of `wanted` arrived at `path`; the time of the last first arrival."""
    deadline = time.monotonic() + timeout
    while True:
        seen = arrivals.first.get(path, {})
        if wanted <= seen.keys():
            return max(seen[i] for i in wanted)
        left = deadline - time.monotonic()
        if left <= 0:
            raise SystemExit(f"{path}: {len(wanted - seen.keys())} of {len(wanted)} events never arrived")
        arrivals.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(arrivals.changed.wait(), min(left, 1.0))


def check_order(arrivals: Arrivals, path: str) -> int:
    """Each case's versions arrive in order; the number of cases checked."""
    last: dict[str, int] = {}
    for case_id, version in arrivals.order.get(path, []):
        if version <= last.get(case_id, 0):
            raise SystemExit(f"{path}: case {case_id} version {version} arrived after {last[case_id]}")
        last[case_id] = version
    return len(last)


def event(n: int) -> NewEvent:
    return NewEvent(event_id=uuid.uuid4(), type="PetitionReceived", occurred_at=datetime.now(UTC),
                    actor="bench", data={"intake": {"kind": "complaint", "subject": "Khiếu nại về đất đai", "n": n}})


ROW = CaseRow(kind="complaint", status="received", title="Đơn khiếu nại về đất đai", lead_body="UBND_TINH",
              district="Nam Sách", source="bench")


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`danvan worker` in a process (and session) of its own, its output in `log`."""
    with log.open("wb") as out:
        return subprocess.Popen([str(Path(sys.executable).parent / "danvan"), "worker"], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


async def run(args: argparse.Namespace, url: str) -> dict[str, Any]:  # noqa: C901  (a benchmark's driver, read top to bottom)
    from temporalio.testing import WorkflowEnvironment

    from activities.webhook_types import WebhookPolicy
    from api.subscriptions import (
        SecretBox,
        SubscriptionChange,
        SubscriptionRequest,
        change_subscription,
        insert_subscription,
        new_secret,
    )
    from api.tokens import Principal, issue_token
    from worker import project_converter
    from workflows.subscription_client import look_again, start_subscription

    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    store = await EventStore.open(url, min_size=2, max_size=8)
    secret = secrets.token_bytes(32)
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=str(Path(sys.executable).parent / "temporal"),
                                               ip="127.0.0.1", ui=False, data_converter=project_converter(secret),
                                               dev_server_extra_args=["--log-level", "warn"])
    arrivals = Arrivals()
    server, port = await serve_receiver(arrivals)
    home = tempfile.mkdtemp(prefix="bench-webhooks-")
    worker_env = {k: v for k, v in os.environ.items() if not k.startswith(("DANVAN_", "TEMPORAL_"))}
    worker_env.update(DATABASE_URL=url, TEMPORAL_ADDRESS=env.client.service_client.config.target_host,
                      DANVAN_HOME=home, DANVAN_SECRET_KEY=base64.b64encode(secret).decode(),
                      DANVAN_WEBHOOK_ALLOW_HOSTS="127.0.0.1", DANVAN_WORKER_METRICS_PORT="0",
                      DANVAN_LOG_LEVEL="WARNING", PYTHONPATH=str(ROOT))
    worker = start_worker(worker_env, Path(home) / "worker.log")
    results: dict[str, Any] = {"rate": args.rate, "seconds": args.seconds, "backlog": args.backlog,
                               "batch": args.batch, "load_at_start": os.getloadavg()}
    try:
        await issue_token(store.pool, "admin", label="bench-admin")
        admin = Principal(role="admin", label="bench-admin", id="bench")
        box = SecretBox(secret)
        policy = WebhookPolicy(batch=args.batch)

        async def subscription(path: str, status: str) -> str:
            row = await insert_subscription(store.pool, box, admin, SubscriptionRequest(
                url=f"http://127.0.0.1:{port}{path}", status=status), new_secret())  # type: ignore[arg-type]
            from api.feed import feed_head

            await start_subscription(env.client, row.id, await feed_head(store.pool), policy)
            return row.id

        # Warm-up: the worker polls, the subscription delivers a first event.
        live = await subscription("/live", "active")
        warm = f"bench-warm-{uuid.uuid4().hex[:6]}"
        first = event(0)
        await store.append(warm, 0, [first], ROW)
        await wait_for(arrivals, "/live", {str(first.event_id)}, 120)
        print(f"worker up (pid {worker.pid}); receiver on port {port}", flush=True)

        # Latency: `rate` new cases a second. A tail of the feed beside the worker notes when each event became
        # visible in it (the feed shows an event once every older transaction of the server has ended).
        from api.feed import FeedFilter, feed_head, read_page

        visible: dict[str, float] = {}
        tailing = True

        async def tail() -> None:
            cursor = await feed_head(store.pool)
            while tailing:
                page = await read_page(store.pool, cursor, 1000, FeedFilter())
                now = time.time()
                for e in page.events:
                    visible.setdefault(str(e.event_id), now)
                cursor = page.cursor
                await asyncio.sleep(0.01)

        tailer = asyncio.create_task(tail())
        committed: dict[str, float] = {}
        total = int(args.rate * args.seconds)
        interval = 1 / args.rate
        start = time.monotonic()

        async def one(n: int) -> None:
            e = event(n)
            await store.append(f"bench-live-{n}-{uuid.uuid4().hex[:8]}", 0, [e], ROW)
            committed[str(e.event_id)] = time.time()

        pending: set[asyncio.Task[None]] = set()
        for n in range(total):
            delay = start + n * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(one(n))
            pending.add(task)
            task.add_done_callback(pending.discard)
        await asyncio.gather(*pending)
        wrote = time.monotonic() - start
        await wait_for(arrivals, "/live", set(committed), 120)
        tailing = False
        await tailer
        seen = arrivals.first["/live"]

        def spread(values: list[float]) -> dict[str, float]:
            return {"p50": round(percentile(values, 0.5), 1), "p90": round(percentile(values, 0.9), 1),
                    "p99": round(percentile(values, 0.99), 1), "max": round(max(values), 1),
                    "mean": round(statistics.fmean(values), 1)}

        results["latency_ms"] = spread([(seen[i] - t) * 1000 for i, t in committed.items()])
        results["feed_visible_ms"] = spread([(visible[i] - t) * 1000 for i, t in committed.items() if i in visible])
        results["visible_to_delivered_ms"] = spread([(seen[i] - visible[i]) * 1000 for i in committed
                                                     if i in visible])
        results["live"] = {"events": total, "written_per_s": round(total / wrote, 1),
                           "cases_in_order": check_order(arrivals, "/live")}
        print(f"latency over {total} events at {total / wrote:.1f}/s: {results['latency_ms']}; visible in the feed "
              f"after {results['feed_visible_ms']}", flush=True)
        await change_subscription(store.pool, live, SubscriptionChange(status="paused"), admin)
        await look_again(env.client, live)

        # Backlog: made paused, the events appended, then resumed.
        backlog = await subscription("/backlog", "paused")
        ids: set[str] = set()
        per_case = 100
        t0 = time.monotonic()
        for base in range(0, args.backlog, per_case * 100):
            cases = range(base, min(args.backlog, base + per_case * 100), per_case)

            async def fill(c: int) -> None:
                events = [event(c + i) for i in range(min(per_case, args.backlog - c))]
                await store.append(f"bench-backlog-{c}-{uuid.uuid4().hex[:6]}", 0, events, ROW)
                ids.update(str(e.event_id) for e in events)

            await asyncio.gather(*(fill(c) for c in cases))
        print(f"{len(ids)} events appended in {time.monotonic() - t0:.1f} s; resuming", flush=True)
        resumed = time.time()
        await change_subscription(store.pool, backlog, SubscriptionChange(status="active"), admin)
        await look_again(env.client, backlog)
        last = await wait_for(arrivals, "/backlog", ids, 3600)
        seconds = last - resumed
        results["backlog_delivery"] = {"events": len(ids), "seconds": round(seconds, 1),
                                       "events_per_s": round(len(ids) / seconds, 1),
                                       "cases_in_order": check_order(arrivals, "/backlog")}
        print(f"backlog of {len(ids)} delivered in {seconds:.1f} s: {len(ids) / seconds:.0f} events/s", flush=True)
        results["requests"] = arrivals.requests
        results["repeats"] = arrivals.requests - sum(len(v) for v in arrivals.first.values())
        results["load_at_end"] = os.getloadavg()
        return results
    finally:
        worker.kill()
        worker.wait()
        server.close()
        await env.shutdown()
        await store.close()


async def cancellable(work: Any) -> dict[str, Any]:
    """`work`, which a plain `kill` (SIGTERM) or an interrupt cancels, so that every `finally` runs (the worker
    and the dev server stopped, the database dropped)."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    result: dict[str, Any] = await work
    return result


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--database-url", default=os.environ.get("DATABASE_URL") or DEFAULT_URL)
    p.add_argument("--rate", type=float, default=50.0, help="cases a second in the latency phase")
    p.add_argument("--seconds", type=float, default=60.0, help="how long the latency phase writes")
    p.add_argument("--backlog", type=int, default=100_000, help="events of the backlog")
    p.add_argument("--batch", type=int, default=100, help="events a delivery activity reads at a time")
    p.add_argument("--quick", action="store_true", help="10 s of writes and a backlog of 5,000: checks it runs")
    p.add_argument("--json", type=Path, help="write the results here")
    args = p.parse_args(argv)
    if args.quick:
        args.seconds, args.backlog = 10.0, 5_000
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    name = f"bench_{secrets.token_hex(4)}"
    url = with_database(args.database_url, name)
    print(f"server {redact(args.database_url)}; database {name}", flush=True)
    asyncio.run(create_database(args.database_url, name))
    try:
        results = asyncio.run(cancellable(run(args, url)))
    finally:
        asyncio.run(drop_database(args.database_url, name))
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
