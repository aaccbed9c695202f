"""Importing open cases over HTTP, on the real worker, Temporal and PostgreSQL: the sample file imported twice
(nothing new the second time), a refused line (its number and rule, nothing stored), and an imported case's
deadlines equal to those of the same case driven live through the decider at the same moments."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from activities.rules import CaseRulesRequest, RulesActivities
from domain.calendar import local_date
from domain.common import SYSTEM
from domain.petitions import commands as c
from domain.petitions.decider import decide, fold
from domain.petitions.imports import ImportedCase, importer
from domain.petitions.model import petition_case_id
from eventstore import EventStore
from tests.cli import Cli

from ..workflows.support import folded
from .support import Api, token, unique

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "open-cases.jsonl"
NDJSON = {"Content-Type": "application/x-ndjson"}


@pytest_asyncio.fixture(scope="module")
async def admin(store: EventStore) -> str:
    return await token(store, "admin")


def sample(source: str, count: int) -> list[str]:
    """The first `count` lines of the sample, under a source of the test's own (so each run imports anew)."""
    lines = []
    for text in SAMPLE.read_text(encoding="utf-8").splitlines()[:count]:
        line = json.loads(text)
        line["intake"]["source"] = source
        lines.append(json.dumps(line, ensure_ascii=False))
    return lines


async def post(api: Api, admin: str, lines: list[str]) -> dict[str, Any]:
    answer = await api.post("/v1/import/cases", admin, content="\n".join(lines).encode("utf-8"), headers=NDJSON)
    assert answer.status_code == 200, answer.text
    report: dict[str, Any] = answer.json()
    return report


async def test_the_sample_imported_twice_opens_each_case_once(api: Api, admin: str, store: EventStore) -> None:
    lines = sample(unique("cu"), 40)
    first = await post(api, admin, lines)
    assert (first["lines"], first["imported"], first["already"], first["refused"]) == (40, 40, 0, 0), first
    second = await post(api, admin, lines)
    assert (second["imported"], second["already"], second["refused"]) == (0, 40, 0), second
    case_id = first["case_ids"][0]
    assert (await store.get_case(case_id)) is not None


async def test_a_refused_line_is_reported_with_its_number_and_rule_and_nothing_of_it_is_stored(
    api: Api, admin: str, store: EventStore
) -> None:
    source = unique("cu")
    good = sample(source, 3)
    bad = json.loads(good[1])
    bad["intake"]["external_ref"] = "HD-REFUSED"
    bad["steps"] = [{"at": bad["intake"]["received_at"], "command": {"type": "accept", "decision_no": "1/QĐ"}}]
    report = await post(api, admin, [good[0], json.dumps(bad, ensure_ascii=False), good[2], "{not json"])
    assert (report["imported"], report["refused"]) == (2, 2), report
    assert [(r["line"], r["rule"]) for r in report["refusals"]] == [(2, "accept.state"), (4, "json_invalid")]
    assert report["by_reason"] == {"accept.state": 1, "json_invalid": 1}
    assert await store.get_case(petition_case_id(source, "HD-REFUSED")) is None
    assert await store.read_stream(petition_case_id(source, "HD-REFUSED")) == []


async def test_an_imported_case_has_the_deadlines_of_the_same_case_driven_live(
    api: Api, admin: str, store: EventStore
) -> None:
    lines = sample(unique("cu"), 24)
    report = await post(api, admin, lines)
    assert report["imported"] == 24
    rules = RulesActivities()
    for text in lines:
        line = ImportedCase.model_validate_json(text)
        case_id = petition_case_id(line.intake.source, line.intake.external_ref)
        live = decide(None, c.Receive(case_id=case_id, intake=line.intake, rules=await rules.load_case_rules(
            CaseRulesRequest(received_on=local_date(line.intake.received_at)))), SYSTEM, line.intake.received_at)
        state = fold(live)
        for step in line.steps:  # each command sent live at its moment, as a clerk would have sent it
            state = fold(decide(state, step.command, importer(line.intake.source), step.at), state)
        assert state is not None
        row = await store.get_case(case_id)
        assert row is not None and row.status == state.status.value
        imported = await folded(store, case_id)  # the case as its stored events make it
        # The same deadlines, due the same days (the timers fired since are the workflow's, live or imported).
        assert {k: d.deadline for k, d in imported.deadlines.items()} == {
            k: d.deadline for k, d in state.deadlines.items()}, case_id
        met = {k: d.outcome for k, d in state.deadlines.items() if d.outcome in ("on_time", "late")}
        assert {k: imported.deadlines[k].outcome for k in met} == met, case_id


async def test_only_an_admin_imports_and_a_body_past_the_line_limit_is_413(api: Api, admin: str,
                                                                           store: EventStore) -> None:
    body = await token(store, "body", "UBND_TINH")
    refused = await api.post("/v1/import/cases", body, content=sample(unique("cu"), 1)[0].encode(), headers=NDJSON)
    assert refused.status_code == 403
    many = "\n".join(["{}"] * 2001).encode()
    assert (await api.post("/v1/import/cases", admin, content=many, headers=NDJSON)).status_code == 413


async def test_the_command_line_imports_a_file_with_progress_and_a_report(
    api: Api, store: EventStore, cli: Cli, temporal_env: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", temporal_env.client.service_client.config.target_host)
    file = tmp_path / "cases.jsonl"
    file.write_text("\n".join([*sample(unique("cu"), 6), '{"intake": {}}']) + "\n", encoding="utf-8")
    status, out, err = await cli.run_async("import", "cases", str(file))
    assert status == 1, err  # a line refused
    assert "imported 6, already there 0, refused 1" in out and "line 7: missing" in out
    assert "cases [" in err and "7/7" in err
    status, out, err = await cli.run_async("import", "cases", str(file), "--json")
    report = json.loads(out)
    assert (report["imported"], report["already"], report["refused"]) == (0, 6, 1)
