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
        await _check_secret(settings, db.url)
        yield db.url
    finally:
        await asyncio.to_thread(db.stop)


async def _check_secret(settings: Settings, url: str) -> None:
    """Refuse to go on with another secret than the installation's (`danvan.keys.check_installation_secret`).
    Before the schema exists (`danvan migrate` on a new database) there is nothing to compare with."""
    import asyncpg

    from .keys import SecretMismatch, check_installation_secret, settings_key

    conn = await asyncpg.connect(url, timeout=10)
    try:
        await check_installation_secret(conn, settings_key(settings))
    except asyncpg.UndefinedTableError:
        pass
    except SecretMismatch as exc:
        raise Refused(str(exc)) from None
    finally:
        await conn.close()


# -- commands ----------------------------------------------------------------------------------------


async def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    from .up import run_up

    return await run_up(settings)


async def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from worker import run_worker
    from workflows.shared import TASK_QUEUE

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with database(settings, create=True) as url:
        await run_worker(settings, url, stop, task_queue=args.task_queue or TASK_QUEUE)
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
    from integrity.checkpoints import CheckpointError
    from integrity.commands import run_verify

    async with database(settings) as url:
        try:
            return await run_verify(settings, url, args.case_id, temporal=not args.no_temporal, as_json=args.json)
        except CheckpointError as exc:
            raise Refused(str(exc)) from exc


async def cmd_checkpoint(settings: Settings, args: argparse.Namespace) -> int:
    from integrity.checkpoints import CheckpointError
    from integrity.commands import run_checkpoint

    async with database(settings) as url:
        try:
            return await run_checkpoint(settings, url, every=args.every)
        except CheckpointError as exc:
            raise Refused(str(exc)) from exc


async def cmd_proof(settings: Settings, args: argparse.Namespace) -> int:
    from integrity.checkpoints import CheckpointError
    from integrity.commands import run_proof

    async with database(settings) as url:
        try:
            return await run_proof(settings, url, args.case_id, args.output)
        except CheckpointError as exc:
            raise Refused(str(exc)) from exc


async def cmd_history(settings: Settings, args: argparse.Namespace) -> int:
    from eventstore import EventStore

    async with database(settings) as url:
        store = await EventStore.open(url, max_size=2)
        try:
            events, report = await store.read_verified(args.case_id)
        finally:
            await store.close()
    if not events:
        raise Refused(f"case {args.case_id} not found")
    from api.identities import shown_events

    events = shown_events(events)  # an identity recorded in clear before sealing is not shown here either
    if args.process:
        return await _history_with_process(settings, args, events, report)
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
        _print_event(e)
    return _print_integrity(report, events)


def _print_event(e: Any, at: Any = None) -> None:
    when = f"{at:%Y-%m-%d %H:%M:%S}" if at is not None else f"{e.occurred_at:%Y-%m-%d %H:%M}"
    line = f"{e.version:>4}  {when}  {e.type:<28} {e.actor or '-'}"
    print(line)
    if e.reason:
        print(f"        reason: {e.reason}")
    if e.legal_basis:
        print(f"        legal basis: {e.legal_basis}")


def _print_integrity(report: Any, events: Sequence[Any]) -> int:
    if report.ok:
        print(f"integrity: ok (hash chain verifies, head {events[-1].hash[:16]}…)")
        return 0
    print(f"integrity: BROKEN at version {report.first_bad_version}: {report.problem}")
    return 1


async def _history_with_process(settings: Settings, args: argparse.Namespace, events: Sequence[Any],
                                report: Any) -> int:
    """`history --process`: the domain events merged with Temporal's history of every run (`api.timeline`)."""
    from temporalio.service import RPCError

    from api.timeline import DomainEntry, domain_entries, fetch_process, merge
    from worker import connect

    try:
        async with asyncio.timeout(30):
            client = await connect(settings.temporal_address, settings.temporal_namespace)
            process = await fetch_process(client, args.case_id)
    except (RPCError, RuntimeError, TimeoutError) as exc:
        raise Refused(f"cannot read the process from Temporal at {settings.temporal_address}: {exc}") from exc
    timeline = merge(domain_entries(events), process.entries)
    if args.json:
        print(json.dumps({
            "case_id": args.case_id,
            "integrity": report.model_dump(mode="json"),
            "events": [e.model_dump(mode="json") for e in events],
            "timeline": [entry.model_dump(mode="json") for entry in timeline],
            "process": process.model_dump(mode="json", exclude={"entries"}),
        }, ensure_ascii=False, indent=2))
        return 0 if report.ok else 1
    by_version = {e.version: e for e in events}
    runs = ", ".join(f"{r.run_id} ({r.status})" for r in process.runs) or "none in Temporal"
    print(f"{args.case_id}: {len(events)} event(s); runs: {runs}")
    for entry in timeline:
        if isinstance(entry, DomainEntry):
            _print_event(by_version[entry.version], entry.at)
        else:
            print(f"      · {entry.at:%Y-%m-%d %H:%M:%S}  {entry.summary}")
    for note in process.notes:
        print(f"note: {note}")
    return _print_integrity(report, events)


async def cmd_token_create(settings: Settings, args: argparse.Namespace) -> int:
    from api.tokens import issue_token
    from eventstore import create_pool

    if args.body is not None:
        _check_token_body(args.role, args.body)
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


def _check_token_body(role: str, code: str) -> None:
    """A `body` token is issued only for a body of `policy/bodies.yaml` in force today (in Vietnam): one
    abolished could be given no new work, and an unknown code would be a token nobody's cases ever match."""
    from datetime import UTC, datetime

    from activities.rules import load_bodies
    from api.tokens import check_token_body
    from domain.bodies import BodyError
    from domain.calendar import local_date

    if role != "body":
        return  # refused by issue_token: only a `body` token has a body
    try:
        check_token_body(load_bodies(), code, local_date(datetime.now(UTC)))
    except (BodyError, ValueError) as exc:
        raise Refused(f"--body: {exc}") from None


async def cmd_identity_erase(settings: Settings, args: argparse.Namespace) -> int:
    """Crypto-shred one petitioner's identity (`api.identities.IdentityVault.erase`), recorded with the login
    running the command, the time and the reason."""
    import getpass
    import socket

    from api.identities import IdentityErased, IdentityNotFound, IdentityVault
    from eventstore import create_pool

    from .keys import settings_key

    reason = args.reason.strip()
    if len(reason) < 10:
        raise Refused("--reason: give at least 10 characters saying why the identity is erased")
    async with database(settings) as url:
        pool = await create_pool(url, max_size=1)
        try:
            vault = IdentityVault(pool, settings_key(settings))
            erasure = await vault.erase(args.ref, by=f"{getpass.getuser()}@{socket.gethostname()}",
                                        role="operator", reason=reason)
        except IdentityNotFound:
            raise Refused(f"no sealed identity {args.ref!r}") from None
        except IdentityErased as exc:
            when = f" on {exc.erasure.erased_at.isoformat()}" if exc.erasure else ""
            raise Refused(f"identity {args.ref!r} was already erased{when}") from None
        finally:
            await pool.close()
    print(f"erased {erasure.ref} (case {erasure.case_id}) at {erasure.erased_at.isoformat()} by {erasure.erased_by}")
    return 0


async def cmd_plan_import(settings: Settings, args: argparse.Namespace) -> int:
    from activities.plan_loader import PlanFileError, load_plan
    from domain.common import Actor
    from worker import connect
    from workflows.client import CommandRefused
    from workflows.plan_client import import_plan, plan_progress

    try:
        document = load_plan(args.file)
    except PlanFileError as exc:
        raise Refused(str(exc)) from exc
    client = await connect(settings.temporal_address, settings.temporal_namespace)
    actor = Actor(id="cli", role="admin")
    try:
        result = await import_plan(client, document, apply_changes=args.apply_changes, actor=actor)
    except CommandRefused as exc:
        raise Refused(f"{exc.rule}: {exc.message}") from exc
    total = len(result.task_case_ids)
    while True:  # the task cases start in the background: show how far they are
        progress = await plan_progress(client, document.id)
        started = progress.started if progress else 0
        bar = "#" * (30 * started // max(total, 1))
        print(f"\r  task cases started [{bar:<30}] {started}/{total}", end="", file=sys.stderr, flush=True)
        if started >= total:
            print(file=sys.stderr)
            break
        await asyncio.sleep(0.3)
    print(f"plan {result.plan_id}: {result.outcome} ({total} task cases, digest {result.digest[:12]})")
    if result.diff is not None:
        print(result.diff.summary())
    return 0


def _operator() -> Any:
    """The operator of a repair made from this machine: the login of the user running the command."""
    import getpass
    import socket

    from domain.common import Actor

    return Actor(id=f"{getpass.getuser()}@{socket.gethostname()}", role="operator")


@asynccontextmanager
async def _ops(settings: Settings) -> AsyncIterator[tuple[Any, Any]]:
    """A Temporal client and an event store, for the operators' commands."""
    from eventstore import EventStore
    from worker import connect

    async with database(settings) as url:
        client = await connect(settings.temporal_address, settings.temporal_namespace)
        store = await EventStore.open(url, max_size=4)
        try:
            yield client, store
        finally:
            await store.close()


async def cmd_stalled(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import timedelta

    from danvan.visibility import UnsafeValue
    from ops.stalled import StallPolicy, find_stalled, visibility_query

    try:
        visibility_query(args.kind, args.body)
    except UnsafeValue as exc:
        print(f"danvan stalled: {exc}", file=sys.stderr)
        return 2
    policy = StallPolicy(min_attempts=args.min_attempts, idle=timedelta(hours=args.idle_hours))
    async with _ops(settings) as (client, store):
        found = await find_stalled(client, store, policy, kind=args.kind, body=args.body, reason=args.reason)
    if args.json:
        print(json.dumps([s.model_dump(mode="json") for s in found], ensure_ascii=False, indent=2))
        return 0
    if not found:
        print("no stalled case", file=sys.stderr)
        return 0
    for s in found:
        since = f"{s.since:%Y-%m-%d %H:%M}" if s.since else "?"
        print(f"{s.case_id}\t{s.reason}\tsince {since}\t{s.kind or '-'}\t{s.lead_body or '-'}\t"
              f"remedy: {' or '.join(s.remedies)}\n    {s.detail}")
    return 0


async def _run_repair(settings: Settings, args: argparse.Namespace) -> int:
    from ops import repairs

    actor = _operator()
    async with _ops(settings) as (client, store):
        try:
            if args.action == "retry":
                outcome = await repairs.retry(client, args.case_id, actor, args.reason)
            elif args.action == "reset":
                outcome = await repairs.reset(client, store, args.case_id, actor, args.reason,
                                              to_event_id=args.to_event, dry_run=args.dry_run)
            elif args.action == "nudge":
                outcome = await repairs.nudge(client, args.case_id, actor, args.reason, body=args.body)
            else:
                outcome = await repairs.reassign(client, args.case_id, actor, args.reason, body=args.body)
        except repairs.RepairRefused as exc:
            raise Refused(f"{exc.rule}: {exc.message}") from exc
    if args.json:
        print(outcome.model_dump_json(indent=2))
    elif outcome.dry_run and outcome.plan is not None:
        plan = outcome.plan
        print(f"reset {args.case_id} to event {plan.reset_to_event_id} ({plan.reset_to_time:%Y-%m-%d %H:%M:%S}); "
              f"{plan.events_after} history events after it; stream at version {plan.stream_version}, "
              "nothing will be appended twice")
        if plan.failing:
            print(f"failing: {plan.failing}")
        for u in plan.updates:
            print(f"  re-run {u.name} {u.command_type or ''} {u.command_id or u.update_id}")
        print("(dry run: nothing changed)")
    else:
        state = "recorded" if outcome.recorded else "accepted; recorded when the case's current step ends"
        print(f"{args.action} {args.case_id}: {state}" + (f" (version {outcome.version})" if outcome.version else ""))
    return 0


async def cmd_report(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import UTC, datetime
    from pathlib import Path

    from activities.rules import load_report_calendar
    from eventstore import create_pool
    from eventstore.reports import current_report, report_csv, report_table

    try:
        period = load_report_calendar().period(args.period)
    except ValueError as exc:
        raise Refused(str(exc)) from exc
    async with database(settings) as url:
        pool = await create_pool(url, max_size=2)
        try:
            report = await current_report(pool, period, plan_id=args.plan, as_of=args.as_of, now=datetime.now(UTC))
        finally:
            await pool.close()
    if args.format == "json":
        text = report.model_dump_json(indent=2) + "\n"
    elif args.format == "csv":
        text = report_csv(report)
    else:
        text = report_table(report)
    if args.output:
        try:  # bytes, so the CSV's CRLF line ends stay as they are
            await asyncio.to_thread(Path(args.output).write_bytes, text.encode("utf-8"))
        except OSError as exc:
            raise Refused(f"cannot write {args.output}: {exc.strerror}") from exc
        print(f"report {period.id} written to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _instant_arg(text: str) -> Any:
    from datetime import datetime

    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: not an ISO 8601 date and time") from None
    if instant.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r}: give the offset too, e.g. 2026-07-05T17:00:00+07:00")
    return instant


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
    p = add("worker", cmd_worker, "Run a Temporal worker for the case workflows.")
    p.add_argument("--task-queue", metavar="NAME",
                   help="poll this task queue instead of `danvan`, the one the API and the CLI start cases on")
    add("api", cmd_api, "Serve the HTTP API and console.")
    add("migrate", cmd_migrate, "Apply pending database migrations.")
    p = add("verify", cmd_verify, "Check one case, or every case: hash chains, the latest signed checkpoint and "
            "Temporal's record of each case; every broken stream is named with its first bad version.")
    p.add_argument("case_id", nargs="?", help="the case to check (default: all)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--no-temporal", action="store_true", help="do not compare with Temporal's record")
    p = add("checkpoint", cmd_checkpoint, "Sign a checkpoint of every stream head into the checkpoint log "
            "(DANVAN_CHECKPOINT_LOG), outside the database.")
    p.add_argument("--every", type=float, metavar="SECONDS", help="keep taking one every SECONDS until stopped")
    p = add("proof", cmd_proof, "Write the inclusion proof of a case's head in the latest checkpoint "
            "(check it offline: python -m integrity.proofcheck PROOF --public-key KEY).")
    p.add_argument("case_id")
    p.add_argument("--output", metavar="FILE", help="write to FILE instead of standard output")
    p = add("history", cmd_history, "Print a case's events in order, with the integrity of its hash chain.")
    p.add_argument("case_id")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--process", action="store_true",
                   help="merge in what Temporal did (activities and their attempts, timers, updates, runs)")
    p = add("stalled", cmd_stalled, "List stalled cases: failing or paused steps, failing workflow code, and "
            "overdue cases nobody has acted on; each with the remedy that fits.")
    p.add_argument("--kind", help="only cases of this kind")
    p.add_argument("--body", help="only cases led by this body")
    p.add_argument("--reason", choices=["activity_failing", "activity_paused", "workflow_task_failing",
                                        "deadline_idle"])
    p.add_argument("--min-attempts", type=int, default=3, help="a step is failing from this attempt (default 3)")
    p.add_argument("--idle-hours", type=float, default=48.0,
                   help="overdue and nobody acted for this long (default 48)")
    p.add_argument("--json", action="store_true", help="print JSON")
    for action, help_ in [
        ("retry", "Retry now the failing or paused steps of a case, and record the repair."),
        ("reset", "Re-run a case from its last good point (after a fixed worker is deployed), and record it."),
        ("nudge", "Remind the bodies a case waits on, and record it."),
        ("reassign", "Give a case to another body, and record it."),
    ]:
        p = add(action, _run_repair, help_ + " The operator recorded is the login running the command.")
        p.set_defaults(action=action)
        p.add_argument("case_id")
        p.add_argument("--reason", required=True, help="why (recorded in the case's stream)")
        p.add_argument("--json", action="store_true", help="print JSON")
        if action == "reset":
            p.add_argument("--to-event", type=int, metavar="EVENT_ID",
                           help="a completed workflow task's event id (default: the last good point)")
            p.add_argument("--dry-run", action="store_true", help="show the point and what would be re-run")
        if action in ("nudge", "reassign"):
            p.add_argument("--body", required=action == "reassign",
                           help="the body to remind (default: all it waits on)" if action == "nudge"
                           else "the body the case goes to")
    p = add("report", cmd_report, "Print a period's report: plan tasks' reports by task and body, petitions by "
            "kind and district. Without --as-of: the compiled report when there is one, else the figures now.")
    p.add_argument("period", help="2026-H1 (January to June) or 2026 (the year)")
    p.add_argument("--plan", help="only this plan's tasks (default: every plan's)")
    p.add_argument("--as-of", type=_instant_arg, metavar="ISO",
                   help="count the events recorded up to this instant, e.g. 2026-07-05T17:00:00+07:00")
    p.add_argument("--format", choices=["table", "json", "csv"], default="table", help="default: table")
    p.add_argument("--output", metavar="FILE", help="write to FILE instead of standard output")
    plan = sub.add_parser("plan", help="The action plan.", description="The action plan.")
    plan_sub = plan.add_subparsers(dest="plan_command", required=True, metavar="ACTION")
    p = plan_sub.add_parser("import", help="Start a plan task case for every task of a plan (idempotent).",
                            description="Start a plan task case for every task of a plan (idempotent).")
    p.add_argument("file", nargs="?", help="a plan document, YAML or JSON (default: plan/action_plan.yaml)")
    p.add_argument("--apply-changes", action="store_true",
                   help="apply an edited plan: start its new tasks (changed and removed ones are reported)")
    p.set_defaults(handler=cmd_plan_import)
    token = sub.add_parser("token", help="Manage API tokens.", description="Manage API tokens.")
    token_sub = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    p = token_sub.add_parser("create", help="Issue a bearer token (printed once).")
    p.add_argument("--role", required=True, choices=["intake", "body", "supervisor", "operator", "admin"])
    p.add_argument("--body", help="the body a `body` token acts for (required for that role)")
    p.add_argument("--label", help="who holds it; for `intake`, the sending system's name")
    p.set_defaults(handler=cmd_token_create, usage_check=_token_usage, parser=p)
    identity = sub.add_parser("identity", help="Petitioners' sealed identities.",
                              description="Petitioners' sealed identities.")
    identity_sub = identity.add_subparsers(dest="identity_command", required=True, metavar="ACTION")
    p = identity_sub.add_parser(
        "erase", help="Erase an identity for good: its key and ciphertext are destroyed; the erasure is recorded.",
        description="Erase an identity for good: its key and ciphertext are destroyed; the erasure is recorded "
                    "with the login running the command and the reason. Every hash chain still verifies.")
    p.add_argument("ref", help="the case's petitioner_ref (sealed-...)")
    p.add_argument("--reason", required=True, help="why (at least 10 characters; recorded)")
    p.set_defaults(handler=cmd_identity_erase)
    return parser


def _token_usage(args: argparse.Namespace) -> str | None:
    if args.role == "body" and not args.body:
        return "the following arguments are required with --role body: --body"
    if args.role != "body" and args.body is not None:
        return f"--body: only a `body` token acts for a body, not a {args.role!r} token"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on bad usage
    usage_check: Callable[[argparse.Namespace], str | None] | None = getattr(args, "usage_check", None)
    problem = usage_check(args) if usage_check is not None else None
    if problem is not None:
        args.parser.error(problem)  # exits 2, with the command's usage
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
