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


class BadUsage(Exception):
    """A value the command cannot take, found only once it runs (a body or plan nobody knows): its message, which
    names the flag, goes to stderr and the status is 2, as for argparse's own usage errors."""


#: The kinds of case, as `api.filters.CASE_KINDS` has them (`tests/integration/test_cli_usage.py` checks they
#: agree); spelled out so that building the parser imports nothing heavy.
CASE_KINDS = ("complaint", "denunciation", "recommendation", "voter_petition", "plan_task", "plan", "report_cycle",
              "front_supervision")
STALL_REASONS = ("activity_failing", "activity_paused", "workflow_task_failing", "deadline_idle",
                 "subscription_failing", "checkpoint_late")
#: The limits of the API's `api.routes.ops` and `api.filters`, applied to the same values given here.
MIN_REASON, MAX_REASON = 10, 2000
MAX_CASE_ID = 200
#: A report period, as `api.routes.reports.PERIOD_PATTERN`.
PERIOD_PATTERN = r"^\d{4}(-H[12])?$"
#: Vietnam's offset, in which every time the command shows is written.
VIETNAM_OFFSET = "+07:00"


def local_time(instant: Any, *, seconds: bool = True) -> str:
    """`2026-01-05 09:30:00+07:00`: an aware instant in Vietnam's time, saying so."""
    from domain.calendar import VN_TZ

    return f"{instant.astimezone(VN_TZ):%Y-%m-%d %H:%M{':%S' if seconds else ''}}{VIETNAM_OFFSET}"


def in_vietnam(value: Any) -> Any:
    """`value` with every aware datetime in it at +07:00 (`domain.calendar.in_vietnam`), for JSON output."""
    from domain.calendar import in_vietnam as moved

    return moved(value)


# -- the values flags take (argparse `type=`: a bad value is exit 2 naming the flag) -----------------------


def _no_control(text: str) -> str:
    if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in text):
        raise argparse.ArgumentTypeError(f"{text!r}: control characters are not allowed")
    return text


def case_id_arg(text: str) -> str:
    if not 1 <= len(text) <= MAX_CASE_ID:
        raise argparse.ArgumentTypeError(f"a case id has 1 to {MAX_CASE_ID} characters, not {len(text)}")
    return _no_control(text)


def reason_arg(text: str) -> str:
    import unicodedata

    text = unicodedata.normalize("NFC", _no_control(text.strip()))
    if not MIN_REASON <= len(text) <= MAX_REASON:
        raise argparse.ArgumentTypeError(f"give {MIN_REASON} to {MAX_REASON} characters saying why, not {len(text)}")
    return text


def body_arg(text: str) -> str:
    import re

    from domain.bodies import BODY_CODE_PATTERN

    if not 2 <= len(text) <= 64 or not re.fullmatch(BODY_CODE_PATTERN, text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a body code (e.g. UBND_TINH, UBND_HUYEN:nam-sach)")
    return text


def plan_arg(text: str) -> str:
    import re

    from domain.plan import PLAN_ID_PATTERN

    if not 1 <= len(text) <= 100 or not re.fullmatch(PLAN_ID_PATTERN, text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a plan id (letters, digits, '.', '_', '-')")
    return text


def period_arg(text: str) -> str:
    import re

    if not re.fullmatch(PERIOD_PATTERN, text):
        raise argparse.ArgumentTypeError(f"{text!r}: a period is YYYY-H1, YYYY-H2 or YYYY, e.g. 2026-H1 or 2026")
    return text


def day_arg(text: str) -> Any:
    from datetime import date

    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: not a day, YYYY-MM-DD") from None
    if not date(2000, 1, 1) <= day <= date(2100, 12, 31):  # the API's (api.filters.check_day)
        raise argparse.ArgumentTypeError(f"{text!r}: must be between 2000-01-01 and 2100-12-31")
    return day


def label_arg(text: str) -> str:
    import unicodedata

    text = unicodedata.normalize("NFC", _no_control(text.strip()))
    if not 1 <= len(text) <= 200:  # the API's (api.tokens.TokenRequest)
        raise argparse.ArgumentTypeError(f"a label has 1 to 200 characters, not {len(text)}")
    return text


def int_arg(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is out of range: {low} to {high}")
        return value
    return parse


def positive_arg(high: float) -> Callable[[str], float]:
    """A number above 0 and at most `high` (finite)."""
    import math

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value) or not 0 < value <= high:
            raise argparse.ArgumentTypeError(f"{text} is out of range: above 0, at most {high:g}")
        return value
    return parse


def _known_body(flag: str, code: str) -> None:
    """BadUsage unless `code` is a body of `policy/bodies.yaml` (in force or not: that is for the case to say)."""
    from activities.rules import load_bodies
    from domain.bodies import UnknownBody

    try:
        load_bodies().get(code)
    except UnknownBody as exc:
        raise BadUsage(f"{flag}: {exc}") from None


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

    from .tracing import configure_tracing

    configure_tracing(settings, "danvan-api")  # off unless an OTLP endpoint is set
    async with database(settings, create=True) as url:
        config = uvicorn.Config(
            create_app(settings, url),
            host=settings.api_host,
            port=settings.api_port,
            log_level=settings.log_level.lower(),
            log_config=None,  # uvicorn's loggers write through the process's JSON lines (`danvan.logs`)
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
                    "events": [in_vietnam(e).model_dump(mode="json") for e in events],
                },
                ensure_ascii=False,
                indent=2,
            )
        )
        return 0
    print(f"{args.case_id}: {len(events)} event(s); times in Vietnam ({VIETNAM_OFFSET})")
    for e in events:
        _print_event(e)
    return _print_integrity(report, events)


def _print_event(e: Any, at: Any = None) -> None:
    """One event: its number (the case's version, which `danvan reset --to-event` takes), when, what, who."""
    when = local_time(at) if at is not None else local_time(e.occurred_at, seconds=False)
    line = f"{e.version:>4}  {when}  {e.type:<28} {e.actor or '-'}"
    print(line)
    dated = e.data.get("dated") if isinstance(e.data, dict) else None
    if dated:
        print(f"        act dated: {dated}")  # the date the written act bears, recorded at `when`
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

    from .client import connect

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
            "events": [in_vietnam(e).model_dump(mode="json") for e in events],
            "timeline": [in_vietnam(entry).model_dump(mode="json") for entry in timeline],
            "process": in_vietnam(process).model_dump(mode="json", exclude={"entries"}),
        }, ensure_ascii=False, indent=2))
        return 0 if report.ok else 1
    by_version = {e.version: e for e in events}
    runs = ", ".join(f"{r.run_id} ({r.status})" for r in process.runs) or "none in Temporal"
    print(f"{args.case_id}: {len(events)} event(s); runs: {runs}; times in Vietnam ({VIETNAM_OFFSET})")
    for entry in timeline:
        if isinstance(entry, DomainEntry):
            _print_event(by_version[entry.version], entry.at)
        else:
            print(f"      · {local_time(entry.at)}  {entry.summary}")
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

    reason = args.reason  # reason_arg: 10 to 2000 characters
    async with database(settings) as url:
        pool = await create_pool(url, max_size=1)
        try:
            vault = IdentityVault(pool, settings_key(settings))
            erasure = await vault.erase(args.ref, by=f"{getpass.getuser()}@{socket.gethostname()}",
                                        role="operator", reason=reason)
        except IdentityNotFound:
            raise Refused(f"no sealed identity {args.ref!r}") from None
        except IdentityErased as exc:
            when = f" on {local_time(exc.erasure.erased_at)}" if exc.erasure else ""
            raise Refused(f"identity {args.ref!r} was already erased{when}") from None
        finally:
            await pool.close()
    print(f"erased {erasure.ref} (case {erasure.case_id}) at {local_time(erasure.erased_at)} by {erasure.erased_by}")
    return 0


async def cmd_plan_import(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from activities.plan_loader import PlanFileError, load_plan, term_warning
    from domain.calendar import local_date
    from domain.common import Actor
    from workflows.client import CommandRefused
    from workflows.plan_client import import_plan, plan_progress

    from .client import connect

    try:
        document = load_plan(args.file, term_start=args.term_start, term_end=args.term_end)
    except PlanFileError as exc:
        raise Refused(str(exc)) from exc
    warning = term_warning(document, local_date(datetime.now(UTC)))
    if warning is not None:
        print(f"danvan plan import: warning: {warning}", file=sys.stderr)
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


async def cmd_import_cases(settings: Settings, args: argparse.Namespace) -> int:
    """Import a JSON Lines file of open cases (`api.imports`), with progress on stderr and the report on stdout."""
    from activities.rules import RulesActivities
    from api.identities import IdentityVault
    from api.imports import Importer, read_lines
    from eventstore import EventStore

    from .client import connect
    from .keys import settings_key

    try:
        from pathlib import Path

        data = await asyncio.to_thread(Path(args.file).read_bytes)
        lines = [line for line in read_lines(data) if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise Refused(f"{args.file}: {exc}") from exc
    async with database(settings) as url:
        store = await EventStore.open(url, max_size=10)
        try:
            client = await connect(settings.temporal_address, settings.temporal_namespace)
            rules = RulesActivities(years=(settings.calendar_first_year, settings.calendar_last_year))
            importer = Importer(client, IdentityVault(store.pool, settings_key(settings)), rules, store=store)
            total = len(lines)

            def progress(report: Any) -> None:
                done = report.imported + report.already + report.refused
                bar = "#" * (30 * done // max(total, 1))
                print(f"\r  cases [{bar:<30}] {done}/{total} (imported {report.imported}, already "
                      f"{report.already}, refused {report.refused})", end="", file=sys.stderr, flush=True)

            report = await importer.run(lines, progress)
            print(file=sys.stderr)
        finally:
            await store.close()
    if args.json:
        print(json.dumps(report.model_dump(mode="json", exclude={"case_ids"}), ensure_ascii=False, indent=2))
    else:
        print(f"{args.file}: {report.lines} line(s): imported {report.imported}, already there {report.already}, "
              f"refused {report.refused}")
        for rule, count in report.by_reason.items():
            print(f"  refused {count} × {rule}")
        for refusal in report.refusals:
            print(f"  line {refusal.line}: {refusal.rule}: {refusal.message}")
    return 1 if report.refused else 0


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

    from .client import connect

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
        raise BadUsage(str(exc)) from None
    if args.body is not None:
        _known_body("--body", args.body)
    policy = StallPolicy(min_attempts=args.min_attempts, idle=timedelta(hours=args.idle_hours))
    if args.schedule or args.scan:
        return await _stalled_scan(settings, args, policy)
    async with _ops(settings) as (client, store):
        found = await find_stalled(client, store, policy, kind=args.kind, body=args.body, reason=args.reason,
                                   describe_all=args.describe_all)
    if args.json:
        print(json.dumps([in_vietnam(s).model_dump(mode="json") for s in found], ensure_ascii=False, indent=2))
        return 0
    if not found:
        print("no stalled case", file=sys.stderr)
        return 0
    for s in found:
        since = local_time(s.since, seconds=False) if s.since else "?"
        print(f"{s.case_id}\t{s.reason}\tsince {since}\t{s.kind or '-'}\t{s.lead_body or '-'}\t"
              f"remedy: {' or '.join(s.remedies)}\n    {s.detail}")
    return 0


async def _stalled_scan(settings: Settings, args: argparse.Namespace, policy: Any) -> int:
    """`danvan stalled --schedule` (the scan's Temporal Schedule, as `danvan up` makes it) or `--scan` (one look
    now, written as the scheduled scan writes it)."""
    from ops.scan import SCHEDULE_ID, ensure_schedule, run_scan

    async with _ops(settings) as (client, store):
        if args.schedule:
            done = await ensure_schedule(client, settings.stalled_scan_every)
            print(f"schedule {SCHEDULE_ID}: {done}" + (f", every {settings.stalled_scan_every} s"
                                                        if done in ("created", "updated") else ""))
            return 0
        info = await run_scan(client, store, policy)
    if args.json:
        print(json.dumps(in_vietnam(info).model_dump(mode="json"), ensure_ascii=False, indent=2))
    else:
        print(f"scan {info.scan_id}: {info.found} open findings ({info.opened} new, {info.cleared} cleared), "
              f"{info.rpcs} Temporal calls ({info.describe_calls} describes), {info.duration_ms:.0f} ms")
    return 0


async def _run_repair(settings: Settings, args: argparse.Namespace) -> int:
    from ops import repairs

    actor = _operator()
    if getattr(args, "body", None) is not None:
        _known_body("--body", args.body)
    async with _ops(settings) as (client, store):
        try:
            if args.action == "retry":
                outcome = await repairs.retry(client, args.case_id, actor, args.reason)
            elif args.action == "reset":
                outcome = await repairs.reset(client, store, args.case_id, actor, args.reason,
                                              after_version=args.to_event, to_event_id=args.to_temporal_event,
                                              dry_run=args.dry_run)
            elif args.action == "nudge":
                outcome = await repairs.nudge(client, args.case_id, actor, args.reason, body=args.body)
            else:
                outcome = await repairs.reassign(client, args.case_id, actor, args.reason, body=args.body)
        except repairs.RepairRefused as exc:
            raise Refused(f"{exc.rule}: {exc.message}") from exc
    if args.json:
        print(in_vietnam(outcome).model_dump_json(indent=2))
    elif outcome.dry_run and outcome.plan is not None:
        plan = outcome.plan
        after = f"just after event {plan.after_version}, " if plan.after_version is not None else ""
        when = local_time(plan.reset_to_time) if plan.reset_to_time else "?"
        print(f"reset {args.case_id} to {after}Temporal event {plan.reset_to_event_id} ({when}); "
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
    from readside.report_output import report_table, report_xlsx, report_zip, table_csv
    from readside.reports import current_report

    if args.table is not None and args.format != "csv":
        raise BadUsage("--table: only with --format csv (an XLSX has every table, one sheet each)")
    binary = args.format == "xlsx" or (args.format == "csv" and args.table is None)
    if binary and not args.output and sys.stdout.isatty():
        raise BadUsage(f"--output: {'an XLSX' if args.format == 'xlsx' else 'a ZIP of the CSV tables'} is not for a "
                       "terminal: give --output FILE (or --table NAME for one CSV)")
    try:
        period = load_report_calendar().period(args.period)
    except ValueError as exc:
        raise BadUsage(f"period: {exc}") from exc
    async with database(settings) as url:
        pool = await create_pool(url, max_size=2)
        try:
            if args.plan is not None:
                await _known_plan(pool, args.plan)
            report = await current_report(pool, period, plan_id=args.plan, as_of=args.as_of, now=datetime.now(UTC))
        finally:
            await pool.close()
    if args.format == "json":
        data = (in_vietnam(report).model_dump_json(indent=2) + "\n").encode("utf-8")
    elif args.format == "xlsx":
        data = report_xlsx(report)
    elif args.format == "csv":
        data = table_csv(report, args.table).encode("utf-8") if args.table else report_zip(report)
    else:
        import shutil

        width = shutil.get_terminal_size((120, 24)).columns if sys.stdout.isatty() else 120
        data = report_table(report, width=max(width, 80)).encode("utf-8")
    if args.output:
        try:  # bytes, so the CSV's CRLF line ends stay as they are
            await asyncio.to_thread(Path(args.output).write_bytes, data)
        except OSError as exc:
            raise Refused(f"cannot write {args.output}: {exc.strerror}") from exc
        print(f"report {period.id} written to {args.output}", file=sys.stderr)
    else:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
    return 0


async def _known_plan(pool: Any, plan_id: str) -> None:
    """BadUsage unless a plan `plan_id` was imported (its plan case, or tasks of it): a report of a plan nobody
    imported would be empty, not wrong, and so would hide a typo."""
    from domain.plan_cases import plan_case_id

    known = await pool.fetchval(
        "SELECT EXISTS (SELECT 1 FROM cases WHERE (kind = 'plan' AND case_id = $2) "
        "OR (kind = 'plan_task' AND source = $1))", plan_id, plan_case_id(plan_id))
    if known:
        return
    plans = await pool.fetch("SELECT DISTINCT source FROM cases WHERE kind = 'plan_task' AND source IS NOT NULL "
                             "ORDER BY source LIMIT 20")
    listed = ", ".join(r["source"] for r in plans) or "none yet (danvan plan import)"
    raise BadUsage(f"--plan: no plan {plan_id!r} was imported (plans: {listed})")


def _instant_arg(text: str) -> Any:
    from datetime import date, datetime

    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: not an ISO 8601 date and time") from None
    if instant.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r}: give the offset too, e.g. 2026-07-05T17:00:00+07:00")
    if not date(2000, 1, 1) <= instant.date() <= date(2100, 12, 31):  # the API's (api.filters.check_instant)
        raise argparse.ArgumentTypeError(f"{text!r}: must be between 2000-01-01 and 2100-12-31")
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
        p.set_defaults(handler=handler, parser=p)
        return p

    add("up", cmd_up, "Run the whole stack here: Temporal, PostgreSQL, migrations, worker and API.")
    p = add("worker", cmd_worker, "Run a Temporal worker for the case workflows.")
    p.add_argument("--task-queue", metavar="NAME",
                   help="poll this task queue instead of `danvan`, the one the API and the CLI start cases on")
    add("api", cmd_api, "Serve the HTTP API and console.")
    add("migrate", cmd_migrate, "Apply pending database migrations.")
    p = add("verify", cmd_verify, "Check one case, or every case: hash chains, the latest signed checkpoint and "
            "Temporal's record of each case; every broken stream is named with its first bad version.")
    p.add_argument("case_id", nargs="?", type=case_id_arg, help="the case to check (default: all)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--no-temporal", action="store_true", help="do not compare with Temporal's record")
    p = add("checkpoint", cmd_checkpoint, "Sign a checkpoint of every stream head into the checkpoint log "
            "(DANVAN_CHECKPOINT_LOG), outside the database.")
    p.add_argument("--every", type=positive_arg(86400), metavar="SECONDS",
                   help="keep taking one every SECONDS until stopped")
    p = add("proof", cmd_proof, "Write the inclusion proof of a case's head in the latest checkpoint "
            "(check it offline: python -m integrity.proofcheck PROOF --public-key KEY).")
    p.add_argument("case_id", type=case_id_arg)
    p.add_argument("--output", metavar="FILE", help="write to FILE instead of standard output")
    p = add("history", cmd_history, "Print a case's events in order, numbered by version (the numbers `reset "
            "--to-event` takes), with the integrity of its hash chain. Times are in Vietnam's time (+07:00).")
    p.add_argument("case_id", type=case_id_arg)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--process", action="store_true",
                   help="merge in what Temporal did (activities and their attempts, timers, updates, runs)")
    p = add("stalled", cmd_stalled, "List stalled cases: failing or paused steps, failing workflow code, and "
            "overdue cases nobody has acted on; each with the remedy that fits.")
    p.add_argument("--kind", choices=CASE_KINDS, metavar="KIND",
                   help=f"only cases of this kind: {', '.join(CASE_KINDS)}")
    p.add_argument("--body", type=body_arg, help="only cases led by this body (a code of policy/bodies.yaml)")
    p.add_argument("--reason", choices=STALL_REASONS)
    p.add_argument("--min-attempts", type=int_arg(2, 100), default=3,
                   help="a step is failing from this attempt, 2 to 100 (default 3)")
    p.add_argument("--idle-hours", type=positive_arg(24 * 365), default=48.0,
                   help="overdue and nobody acted for this long: above 0, at most 8760 (default 48)")
    p.add_argument("--scan", action="store_true",
                   help="look now and write the stalled set the API and the console read, as the scheduled scan "
                        "does every DANVAN_STALLED_SCAN_EVERY seconds")
    p.add_argument("--schedule", action="store_true",
                   help="create or update the scan's Temporal Schedule (every DANVAN_STALLED_SCAN_EVERY seconds; 0 "
                        "deletes it), as `danvan up` does")
    p.add_argument("--describe-all", action="store_true",
                   help="describe every running case workflow (at most 2,000) instead of those Temporal's visibility "
                        "flags and those whose steps the worker noted failing: slower, for when the worker could "
                        "not write its notes")
    p.add_argument("--json", action="store_true", help="print JSON")
    for action, help_ in [
        ("retry", "Retry now the failing or paused steps of a case, and record the repair."),
        ("reset", "Re-run a case from its last good point (after a fixed worker is deployed), and record it."),
        ("nudge", "Remind the bodies a case waits on, and record it."),
        ("reassign", "Give a case to another body, and record it."),
    ]:
        p = add(action, _run_repair, help_ + " The operator recorded is the login running the command.")
        p.set_defaults(action=action)
        p.add_argument("case_id", type=case_id_arg)
        p.add_argument("--reason", required=True, type=reason_arg,
                       help=f"why, {MIN_REASON} to {MAX_REASON} characters (recorded in the case's stream)")
        p.add_argument("--json", action="store_true", help="print JSON")
        if action == "reset":
            point = p.add_mutually_exclusive_group()
            point.add_argument("--to-event", type=int_arg(1, 2**31 - 1), metavar="N",
                               help="resume the case as it was just after its event N was stored: the number "
                               "`danvan history` prints (default: the last good point)")
            point.add_argument("--to-temporal-event", type=int_arg(1, 2**63 - 1), metavar="EVENT_ID",
                               help="a completed workflow task's event id in Temporal's history (the API's "
                               "`to_event_id`)")
            p.add_argument("--dry-run", action="store_true", help="show the point and what would be re-run")
        if action in ("nudge", "reassign"):
            p.add_argument("--body", required=action == "reassign", type=body_arg,
                           help="the body to remind (default: all it waits on)" if action == "nudge"
                           else "the body the case goes to")
    p = add("report", cmd_report, "Print a period's report: plan tasks' reports by task and body, petitions by "
            "kind and district. Without --as-of: the compiled report when there is one, else the figures now.")
    p.add_argument("period", type=period_arg,
                   help="2026-H1 (January to June), 2026-H2 (July to December) or 2026 (the year)")
    p.add_argument("--plan", type=plan_arg, help="only this plan's tasks (default: every plan's)")
    p.add_argument("--as-of", type=_instant_arg, metavar="ISO",
                   help="count the events recorded up to this instant, e.g. 2026-07-05T17:00:00+07:00")
    p.add_argument("--format", choices=["table", "json", "csv", "xlsx"], default="table",
                   help="table (default: text for a terminal, Vietnamese heads), json, csv (one table with --table, "
                   "else a ZIP of one CSV per table) or xlsx (one sheet per table)")
    p.add_argument("--table", choices=["tasks", "bodies", "petitions", "petition_totals", "deadlines_missed"],
                   help="with --format csv: the one table to write")
    p.add_argument("--output", metavar="FILE", help="write to FILE instead of standard output")
    plan = sub.add_parser("plan", help="The action plan.", description="The action plan.")
    plan_sub = plan.add_subparsers(dest="plan_command", required=True, metavar="ACTION")
    p = plan_sub.add_parser("import", help="Start a plan task case for every task of a plan (idempotent).",
                            description="Start a plan task case for every task of a plan (idempotent).")
    p.add_argument("file", nargs="?", help="a plan document, YAML or JSON (default: plan/action_plan.yaml)")
    p.add_argument("--apply-changes", action="store_true",
                   help="apply an edited plan: start its new tasks (changed and removed ones are reported)")
    p.add_argument("--term-start", type=day_arg, metavar="YYYY-MM-DD",
                   help="the first day of the plan's term, instead of the file's")
    p.add_argument("--term-end", type=day_arg, metavar="YYYY-MM-DD",
                   help="the last day of the plan's term, instead of the file's (a plan whose term is over is "
                   "imported with a warning: no report would be requested of its tasks)")
    p.set_defaults(handler=cmd_plan_import, parser=p)
    imports = sub.add_parser("import", help="Import cases already open.", description="Import cases already open.")
    import_sub = imports.add_subparsers(dest="import_command", required=True, metavar="WHAT")
    p = import_sub.add_parser("cases", help="Import a JSON Lines file of open cases (idempotent; docs/import.md).",
                              description="Import a JSON Lines file of open cases, one case a line with its "
                              "intake and dated steps (idempotent by source and external_ref; docs/import.md).")
    p.add_argument("file", help="the JSON Lines file, e.g. examples/open-cases.jsonl")
    p.add_argument("--json", action="store_true", help="the report as JSON")
    p.set_defaults(handler=cmd_import_cases, parser=p)
    token = sub.add_parser("token", help="Manage API tokens.", description="Manage API tokens.")
    token_sub = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    p = token_sub.add_parser("create", help="Issue a bearer token (printed once).")
    p.add_argument("--role", required=True, choices=["intake", "body", "supervisor", "operator", "admin"])
    p.add_argument("--body", type=body_arg,
                   help="the body a `body` token acts for (required for that role): a body in force today")
    p.add_argument("--label", type=label_arg, help="who holds it; for `intake`, the sending system's name")
    p.set_defaults(handler=cmd_token_create, usage_check=_token_usage, parser=p)
    identity = sub.add_parser("identity", help="Petitioners' sealed identities.",
                              description="Petitioners' sealed identities.")
    identity_sub = identity.add_subparsers(dest="identity_command", required=True, metavar="ACTION")
    p = identity_sub.add_parser(
        "erase", help="Erase an identity for good: its key and ciphertext are destroyed; the erasure is recorded.",
        description="Erase an identity for good: its key and ciphertext are destroyed; the erasure is recorded "
                    "with the login running the command and the reason. Every hash chain still verifies.")
    p.add_argument("ref", type=case_id_arg, help="the case's petitioner_ref (sealed-...)")
    p.add_argument("--reason", required=True, type=reason_arg,
                   help=f"why, {MIN_REASON} to {MAX_REASON} characters (recorded)")
    p.set_defaults(handler=cmd_identity_erase, parser=p)
    return parser


#: Commands that run until stopped and log as they go; every other one prints its answer and ends.
SERVING = frozenset({"up", "worker", "api"})


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
    from .logs import configure_logging

    # JSON lines on stderr (`danvan.logs`); a command that answers and ends prints its answer only.
    serving = args.command in SERVING or (args.command == "checkpoint" and args.every is not None)
    configure_logging(settings.log_level, one_shot=not serving)
    from eventstore import EventStoreError

    try:
        status: int = asyncio.run(args.handler(settings, args))
        sys.stdout.flush()  # here, so that a reader gone (`| head`) is met below, not at exit
        return status
    except BrokenPipeError:
        return _reader_gone()
    except Refused as exc:
        print(f"danvan {args.command}: {exc}", file=sys.stderr)
        return 1
    except BadUsage as exc:
        args.parser.print_usage(sys.stderr)
        print(f"{args.parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    except EventStoreError as exc:
        print(f"danvan {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _reader_gone() -> int:
    """The reader of standard output went away (`danvan history X | head`): stop quietly, as a command killed by
    SIGPIPE does (status 128 + 13), with nothing on stderr. What was still buffered goes nowhere, so that the
    interpreter's own flush at exit does not fail again. The command's resources were released on the way out
    (an embedded database is stopped by `database`'s own exit)."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no file descriptor (stdout replaced in-process): nothing to redirect
        pass
    return 141


if __name__ == "__main__":
    sys.exit(main())
