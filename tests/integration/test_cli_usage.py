"""The `danvan` command's exit statuses and outputs: 0 done, 1 refused or failed (the reason on stderr, nothing on
stdout), 2 bad usage (naming the flag), and a reader that goes away (`| head`) ends it quietly. The limits are
the API's for the same values, and every time shown is Vietnam's, saying so.

Real PostgreSQL; the CLI's `main` is called in-process, and as a subprocess where its file descriptors matter.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from annotated_types import MaxLen, MinLen

from api.filters import CASE_KINDS
from api.routes.ops import ResetBody
from danvan import cli as danvan_cli
from eventstore import EventStore, NewEvent
from ops.stalled import StallReason
from tests.cli import Cli
from tests.conftest import secret_env

ROOT = Path(__file__).resolve().parents[2]
REASON = "Cơ quan chưa trả lời quá hạn, nhắc xử lý"


def test_the_cli_names_the_kinds_and_stall_reasons_the_api_takes() -> None:
    assert danvan_cli.CASE_KINDS == CASE_KINDS
    assert set(danvan_cli.STALL_REASONS) == set(StallReason.__args__)  # type: ignore[attr-defined]
    limits = ResetBody.model_fields["reason"].metadata  # the API's `reason` of every repair
    assert MinLen(danvan_cli.MIN_REASON) in limits and MaxLen(danvan_cli.MAX_REASON) in limits


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["stalled", "--idle-hours", "0"], "--idle-hours"),
        (["stalled", "--idle-hours", "nan"], "--idle-hours"),
        (["stalled", "--idle-hours", "8761"], "--idle-hours"),
        (["stalled", "--min-attempts", "1"], "--min-attempts"),
        (["stalled", "--kind", "khieu_nai"], "--kind"),
        (["stalled", "--reason", "bored"], "--reason"),
        (["stalled", "--body", "ubnd tinh"], "--body"),
        (["report", "2026-H1", "--plan", "kế hoạch"], "--plan"),
        (["report", "2026-Q3"], "period"),
        (["report", "2026-H1", "--as-of", "2026-07-05T17:00:00"], "--as-of"),
        (["report", "2026-H1", "--as-of", "1999-12-31T00:00:00+07:00"], "--as-of"),
        (["report", "2026-H1", "--format", "pdf"], "--format"),
        (["reassign", "KN-1", "--reason", REASON], "--body"),
        (["nudge", "KN-1"], "--reason"),
        (["nudge", "KN-1", "--reason", "vì"], "--reason"),
        (["reset", "KN-1", "--reason", REASON, "--to-event", "0"], "--to-event"),
        (["reset", "KN-1", "--reason", REASON, "--to-event", "three"], "--to-event"),
        (["reset", "KN-1", "--reason", REASON, "--to-event", "2", "--to-temporal-event", "5"], "--to-event"),
        (["history"], "case_id"),
        (["history", "x" * 201], "case_id"),
        (["verify", "KN\x01"], "case_id"),
        (["checkpoint", "--every", "0"], "--every"),
        (["identity", "erase", "sealed-1"], "--reason"),
        (["token", "create", "--role", "root"], "--role"),
        (["token", "create", "--role", "intake", "--label", " "], "--label"),
        (["plan"], "ACTION"),
        ([], "COMMAND"),
    ],
)
def test_bad_usage_exits_2_naming_the_flag_with_nothing_on_stdout(cli: Cli, args: list[str], named: str) -> None:
    status, out, err = cli(*args)
    assert (status, out) == (2, ""), err
    assert named in err and "usage: danvan" in err, err


def test_values_known_only_to_the_registry_or_the_database_are_bad_usage_too(cli: Cli) -> None:
    status, out, err = cli("stalled", "--body", "NO_SUCH_BODY")
    assert (status, out) == (2, "") and "--body: unknown body 'NO_SUCH_BODY'" in err, err
    status, out, err = cli("nudge", "KN-1", "--reason", REASON, "--body", "UBND_XA")
    assert (status, out) == (2, "") and "--body: unknown body 'UBND_XA'" in err, err
    plan = f"no-such-plan-{uuid.uuid4().hex[:6]}"
    status, out, err = cli("report", "2026-H1", "--plan", plan)
    assert (status, out) == (2, "") and f"--plan: no plan {plan!r} was imported" in err, err


def test_verify_and_history_of_an_unknown_case_say_why_on_stderr_only(cli: Cli) -> None:
    case_id = f"KN-unknown-{uuid.uuid4().hex[:8]}"
    for args in (["verify", case_id, "--no-temporal"], ["verify", case_id, "--no-temporal", "--json"],
                 ["history", case_id], ["history", case_id, "--json"]):
        status, out, err = cli(*args)
        assert (status, out) == (1, ""), (args, out, err)
        assert case_id in err and "not found" in err, (args, err)


async def _stored_case(store: EventStore, events: int = 3) -> str:
    case_id = f"KN-cli-{uuid.uuid4().hex[:8]}"
    await store.append(case_id, 0, [
        NewEvent(event_id=uuid.uuid4(), type="Ghi nhận", occurred_at=datetime(2026, 1, 5, 2, 30, tzinfo=UTC),
                 actor="cán bộ Nguyễn Thị Hà", reason=f"lần {n}", data={"n": n})
        for n in range(1, events + 1)
    ])
    return case_id


async def test_history_numbers_the_events_and_shows_vietnam_time_saying_so(cli: Cli, store: EventStore) -> None:
    case_id = await _stored_case(store)
    status, out, err = await cli.run_async("history", case_id)
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0] == f"{case_id}: 3 event(s); times in Vietnam (+07:00)"
    assert lines[1].split()[:4] == ["1", "2026-01-05", "09:30+07:00", "Ghi"]  # 02:30 UTC
    assert "cán bộ Nguyễn Thị Hà" in lines[1] and lines[2] == "        reason: lần 1"
    status, out, err = await cli.run_async("history", case_id, "--json")
    assert status == 0 and '"occurred_at": "2026-01-05T09:30:00+07:00"' in out, out
    status, out, err = await cli.run_async("verify", case_id, "--no-temporal")
    assert status == 0 and out.startswith("ok: 1 stream(s), 3 event(s) checked"), (out, err)


async def test_history_into_a_reader_that_has_gone_ends_quietly(store: EventStore, database_url: str) -> None:
    """`danvan history X | head -1`: the reader is gone before the command writes (its end of the pipe closed),
    so the very first write fails. The command stops with SIGPIPE's status and says nothing."""
    case_id = await _stored_case(store, events=40)
    env = {**os.environ, **secret_env(), "DATABASE_URL": database_url}
    for args in (["history", case_id], ["history", case_id, "--json"]):
        read, write = os.pipe()
        os.close(read)
        try:
            run = await asyncio.to_thread(
                subprocess.run, [sys.executable, "-m", "danvan.cli", *args], cwd=ROOT, env=env, stdout=write,
                stderr=subprocess.PIPE, text=True, timeout=60, check=False)
        finally:
            os.close(write)
        assert (run.returncode, run.stderr) == (141, ""), run.stderr
    pipeline = await asyncio.to_thread(
        subprocess.run, ["sh", "-c", f'"{sys.executable}" -m danvan.cli history {case_id} | head -1'],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert pipeline.stdout == f"{case_id}: 40 event(s); times in Vietnam (+07:00)\n" and pipeline.stderr == ""


def test_a_checkpoints_signed_utc_time_is_shown_in_vietnam_time() -> None:
    from integrity.commands import shown_time

    assert shown_time("2026-01-05T19:30:00.123456Z") == "2026-01-06 02:30:00+07:00"
    assert danvan_cli.local_time(datetime(2026, 1, 5, 19, 30, tzinfo=UTC)) == "2026-01-06 02:30:00+07:00"
