"""`danvan plan import` of a plan whose term is over: imported, with a warning that no report will be requested,
and the term's days can be given instead of the file's. A Temporal dev server with its worker, real PostgreSQL;
the CLI's `main` called in-process."""

from __future__ import annotations

import uuid
from datetime import date
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.plan_loader import load_plan, term_warning
from domain.plan_cases import plan_case_id
from eventstore import EventStore
from tests.cli import Cli

from .support import Api, small_plan


@pytest.fixture
def plan_cli(cli: Cli, temporal_env: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("TEMPORAL_ADDRESS", temporal_env.client.service_client.config.target_host)
    return cli


def test_the_warning_names_the_term_and_what_follows_and_is_silent_while_it_runs() -> None:
    shipped = load_plan()  # "nhiệm kỳ 2020 – 2025"
    warning = term_warning(shipped, date(2026, 1, 5))
    assert warning is not None and "ended on 2025-12-31" in warning and "no report will be requested" in warning
    assert "--term-end" in warning
    assert term_warning(shipped, date(2025, 12, 31)) is None
    extended = load_plan(term_end=date(2026, 12, 31))  # its bodies are in force on some day of the new term
    assert (extended.term_start, extended.term_end) == (date(2020, 1, 1), date(2026, 12, 31))
    assert extended.digest() != shipped.digest()  # another term, another plan document


async def test_a_plan_whose_term_is_over_is_imported_with_a_warning_or_for_the_days_given(
    api: Api, plan_cli: Cli, store: EventStore, tmp_path: Path
) -> None:
    ended = f"KH-CLI-{uuid.uuid4().hex[:8]}"
    file = tmp_path / "kế hoạch.yaml"
    file.write_text(small_plan(ended, "2021-01-01", "2025-12-31"), encoding="utf-8")
    status, out, err = await plan_cli.run_async("plan", "import", str(file))
    assert status == 0, err
    assert f"plan {ended}: imported (2 task cases" in out
    assert f"danvan plan import: warning: the term of plan {ended} ended on 2025-12-31" in err

    given = f"KH-CLI-{uuid.uuid4().hex[:8]}"
    file.write_text(small_plan(given, "2021-01-01", "2025-12-31"), encoding="utf-8")
    status, out, err = await plan_cli.run_async("plan", "import", str(file), "--term-start", "2026-01-01",
                                                "--term-end", "2030-12-31")
    assert status == 0, err
    assert "warning" not in err
    row = await store.pool.fetchrow("SELECT summary FROM cases WHERE case_id = $1", plan_case_id(given))
    assert row is not None and (row["summary"]["term_start"], row["summary"]["term_end"]) == (
        "2026-01-01", "2030-12-31")

    status, out, err = await plan_cli.run_async("plan", "import", str(file), "--term-end", "2020-12-31")
    assert (status, out) == (1, "") and "term_order" in err, err
    status, out, err = await plan_cli.run_async("plan", "import", str(file), "--term-end", "31/12/2030")
    assert (status, out) == (2, "") and "--term-end" in err
