"""The `danvan` command.

Exit status: 0 on success, 1 when an operation is refused or fails (the reason on stderr), 2 on bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from typing import Any

from .settings import ConfigError, Settings

log = logging.getLogger("danvan")


class Refused(Exception):
    """An operation that cannot be done; its message goes to stderr and the status is 1."""


@asynccontextmanager
async def database(settings: Settings, *, create: bool = False) -> AsyncIterator[str]:
    """The database URL: `DATABASE_URL`, or the embedded cluster of `DANVAN_HOME`.

    Serving commands (`worker`, `api`, `migrate`) may create the embedded cluster; one-shot commands that
    read cases refuse when there is none, rather than answering from an empty new one.
    """
    from .postgres import open_database

    if not create and settings.database_url is None and not (settings.pgdata / "PG_VERSION").exists():
        raise Refused(
            f"no database: set DATABASE_URL, or run `danvan up` once to create the embedded one in {settings.home}"
        )
    db = await asyncio.to_thread(open_database, settings.database_url, settings.pgdata)
    try:
        yield db.url
    finally:
        await asyncio.to_thread(db.stop)


# -- commands ----------------------------------------------------------------------------------------


async def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    from .up import run_up

    return await run_up(settings)


async def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from worker import run_worker

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with database(settings, create=True) as url:
        await run_worker(settings, url, stop)
    return 0


async def cmd_api(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app

    async with database(settings, create=True) as url:
        config = uvicorn.Config(
            create_app(settings, url),
            host=settings.api_host,
            port=settings.api_port,
            log_level=settings.log_level.lower(),
            proxy_headers=False,
        )
        await uvicorn.Server(config).serve()
    return 0


async def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    import asyncpg

    from eventstore import migrate

    async with database(settings, create=True) as url:
        conn = await asyncpg.connect(url)
        try:
            applied = await migrate(conn)
        finally:
            await conn.close()
    print("applied: " + ", ".join(applied) if applied else "the schema is current")
    return 0


async def cmd_verify(settings: Settings, args: argparse.Namespace) -> int:
    from eventstore import EventStore

    async with database(settings) as url:
        store = await EventStore.open(url, max_size=2)
        try:
            report = await store.verify(args.case_id)
        finally:
            await store.close()
    if args.json:
        print(report.model_dump_json(indent=2))
    elif report.ok:
        print(f"ok: {report.streams_checked} stream(s), {report.events_checked} event(s), every hash chain verifies")
    if not report.ok:
        raise Refused(
            f"stream {report.first_bad_stream} fails at version {report.first_bad_version}: {report.problem}"
        )
    if args.case_id and report.events_checked == 0:
        raise Refused(f"case {args.case_id} has no events")
    return 0


async def cmd_history(settings: Settings, args: argparse.Namespace) -> int:
    from eventstore import EventStore

    async with database(settings) as url:
        store = await EventStore.open(url, max_size=2)
        try:
            events = await store.read_stream(args.case_id)
            report = await store.verify(args.case_id)
        finally:
            await store.close()
    if not events:
        raise Refused(f"case {args.case_id} not found")
    if args.json:
        print(
            json.dumps(
                {
                    "case_id": args.case_id,
                    "integrity": report.model_dump(mode="json"),
                    "events": [e.model_dump(mode="json") for e in events],
                },
                ensure_ascii=False,
                indent=2,
            )
        )
        return 0
    print(f"{args.case_id}: {len(events)} event(s)")
    for e in events:
        line = f"{e.version:>4}  {e.occurred_at:%Y-%m-%d %H:%M}  {e.type:<28} {e.actor or '-'}"
        print(line)
        if e.reason:
            print(f"        reason: {e.reason}")
        if e.legal_basis:
            print(f"        legal basis: {e.legal_basis}")
    if report.ok:
        print(f"integrity: ok (hash chain verifies, head {events[-1].hash[:16]}…)")
    else:
        print(f"integrity: BROKEN at version {report.first_bad_version}: {report.problem}")
        return 1
    return 0


async def cmd_token_create(settings: Settings, args: argparse.Namespace) -> int:
    from api.tokens import issue_token
    from eventstore import create_pool

    async with database(settings) as url:
        pool = await create_pool(url, max_size=1)
        try:
            token = await issue_token(pool, args.role, args.body, args.label or f"cli {args.role}")
        except ValueError as exc:
            raise Refused(str(exc)) from exc
        finally:
            await pool.close()
    print(token)
    return 0


# -- parsing -----------------------------------------------------------------------------------------

Handler = Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, int]]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="danvan",
        description="Case engine of the Mass Mobilization Commission: plan tasks and citizen petitions.",
        epilog="Configuration comes from the environment: DANVAN_HOME, DATABASE_URL, TEMPORAL_ADDRESS, "
        "TEMPORAL_NAMESPACE, DANVAN_API_HOST, DANVAN_API_PORT (see README).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Handler, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(handler=handler)
        return p

    add("up", cmd_up, "Run the whole stack here: Temporal, PostgreSQL, migrations, worker and API.")
    add("worker", cmd_worker, "Run a Temporal worker for the case workflows.")
    add("api", cmd_api, "Serve the HTTP API and console.")
    add("migrate", cmd_migrate, "Apply pending database migrations.")
    p = add("verify", cmd_verify, "Check the hash chain of one case, or of every case.")
    p.add_argument("case_id", nargs="?", help="the case to check (default: all)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p = add("history", cmd_history, "Print a case's events in order, with the integrity of its hash chain.")
    p.add_argument("case_id")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    token = sub.add_parser("token", help="Manage API tokens.", description="Manage API tokens.")
    token_sub = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    p = token_sub.add_parser("create", help="Issue a bearer token (printed once).")
    p.add_argument("--role", required=True, choices=["intake", "body", "supervisor", "operator", "admin"])
    p.add_argument("--body", help="the body a `body` token acts for (required for that role)")
    p.add_argument("--label", help="who holds it; for `intake`, the sending system's name")
    p.set_defaults(handler=cmd_token_create)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on bad usage
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"danvan: configuration: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    from eventstore import EventStoreError

    try:
        status: int = asyncio.run(args.handler(settings, args))
        return status
    except Refused as exc:
        print(f"danvan {args.command}: {exc}", file=sys.stderr)
        return 1
    except EventStoreError as exc:
        print(f"danvan {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
