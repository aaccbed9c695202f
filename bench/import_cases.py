"""Importing open cases: cases per second of `danvan import cases`, against opening as many petitions through
`POST /v1/petitions` in the same run.

    .venv/bin/python -m bench.import_cases [--database-url URL] [--count 10000] [--seed 2026] [--json out.json]

The benchmark starts its own Temporal dev server (a SQLite file in WAL mode, the engine's search attributes), a
worker of the engine (`worker.build_worker`), and the API in-process (httpx ASGI transport: auth, routing, JSON, no
network), on its own database `bench_<random>`, dropped at the end. Timed, in this order:

  - the baseline: `--count` petitions (the intakes of the sample's generator, `examples/make_open_cases.py`, each
    under its own reference) through `POST /v1/petitions`, 8 at a time, as a back office would send them;
  - the import: `--count` other cases of the same generator, with their steps, through `api.imports.Importer` (what
    `danvan import cases` and `POST /v1/import/cases` run), 8 at a time.

Each prints cases per second; the ratio is the import's rate over the baseline's.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import os
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import httpx

from activities.rules import RulesActivities
from api.app import create_app
from api.imports import Importer
from api.tokens import issue_token
from bench import in_new_database
from bench.append_throughput import DEFAULT_URL
from danvan.client import connect
from danvan.settings import Settings
from eventstore import EventStore, migrate
from examples.make_open_cases import KINDS, case
from worker import build_worker
from workflows.shared import SEARCH_ATTRIBUTES

CONCURRENCY = 8
SECRET = "YmVuY2gtaW1wb3J0LWNhc2VzLXNlY3JldC1rZXktMzI="


def lines(seed: int, count: int, prefix: str) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for n in range(1, count + 1):
        line = case(rng, n, KINDS[n % len(KINDS)])
        line["intake"]["external_ref"] = f"{prefix}-{n:06d}"
        out.append(line)
    return out


async def baseline(http: httpx.AsyncClient, tok: str, intakes: list[dict[str, Any]]) -> float:
    limit = asyncio.Semaphore(CONCURRENCY)

    async def one(intake: dict[str, Any]) -> None:
        async with limit:
            answer = await http.post("/v1/petitions", json=intake, headers={"Authorization": f"Bearer {tok}"})
            assert answer.status_code in (200, 201), answer.text

    began = time.perf_counter()
    await asyncio.gather(*(one(i) for i in intakes))
    return time.perf_counter() - began


async def bench(url: str, args: argparse.Namespace) -> dict[str, Any]:
    import asyncpg
    from temporalio.testing import WorkflowEnvironment

    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    store = await EventStore.open(url, min_size=1, max_size=10)
    with tempfile.TemporaryDirectory() as tmp:
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=os.path.join(os.path.dirname(sys.executable), "temporal"), ip="127.0.0.1",
            ui=False, dev_server_database_filename=os.path.join(tmp, "temporal.db"),
            dev_server_extra_args=[arg for name, kind in SEARCH_ATTRIBUTES.items()
                                   for arg in ("--search-attribute", f"{name}={kind}")]
            + ["--sqlite-pragma", "journal_mode=wal", "--log-level", "error"])
        try:
            address = env.client.service_client.config.target_host
            settings = Settings.from_env({"DANVAN_HOME": tmp, "DANVAN_SECRET_KEY": SECRET,
                                          "TEMPORAL_ADDRESS": address, "DANVAN_REQUEST_TIMEOUT": "60"})
            app = create_app(settings, url)
            client = await connect(address, secret=base64.b64decode(SECRET))  # the API's payload codec
            async with build_worker(client, store), app.router.lifespan_context(app):
                tok = await issue_token(app.state.store.pool, "admin", None, "bench.import_cases")
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=120) as http:
                    intakes = [line["intake"] for line in lines(args.seed, args.count, "BASE")]
                    base = await baseline(http, tok, intakes)
                    print(f"POST /v1/petitions: {args.count} petitions in {base:.1f} s, {args.count / base:.1f}/s")
                importer = Importer(client, app.state.vault, RulesActivities(), store=store)
                texts = [json.dumps(line, ensure_ascii=False) for line in lines(args.seed + 1, args.count, "IMP")]
                began = time.perf_counter()
                report = await importer.run(texts)
                took = time.perf_counter() - began
                print(f"import: {report.imported} cases in {took:.1f} s, {args.count / took:.1f}/s "
                      f"(refused {report.refused}, already {report.already})")
        finally:
            await env.shutdown()
            await store.close()
    ratio = (args.count / took) / (args.count / base)
    print(f"ratio import / POST /v1/petitions: {ratio:.2f}x")
    return {"count": args.count, "baseline_s": base, "import_s": took, "baseline_per_s": args.count / base,
            "import_per_s": args.count / took, "ratio": ratio, "load": list(os.getloadavg())}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("temporalio").setLevel(logging.CRITICAL)
    out = in_new_database(args.database_url, lambda url: bench(url, args))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
