"""The operators' commands of `danvan` on real cases (a Temporal dev server, its worker, PostgreSQL): `reset
--to-event` takes the numbers `history` prints, and the times shown are Vietnam's, saying so.

The CLI's `main` is called in-process (`tests.cli`), with the environment an operator's shell would have.
"""

from __future__ import annotations

import json
import re

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from eventstore import EventStore
from tests.cli import Cli

from .support import Api, petition, token, unique

REASON = "Bản sửa lỗi đã triển khai, chạy lại hồ sơ"


class Tokens:
    def __init__(self, **kwargs: str) -> None:
        self.__dict__.update(kwargs)

    intake: str
    source: str
    body: str


@pytest_asyncio.fixture(scope="module")
async def tokens(store: EventStore) -> Tokens:
    source = unique("cli-backoffice")
    return Tokens(intake=await token(store, "intake", label=source), source=source,
                  body=await token(store, "body", "UBND_TINH", label="chuyên viên UBND tỉnh"))


@pytest.fixture
def ops_cli(cli: Cli, temporal_env: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("TEMPORAL_ADDRESS", temporal_env.client.service_client.config.target_host)
    return cli


async def open_case(api: Api, tokens: Tokens) -> str:
    opened = await api.post("/v1/petitions", tokens.intake, json=petition(tokens.source, receiving_body="UBND_TINH"))
    assert opened.status_code == 201, opened.text
    case_id = str(opened.json()["case_id"])
    for command in ({"type": "classify", "lead_body": "UBND_TINH"}, {"type": "accept", "decision_no": "3/QĐ"}):
        answer = await api.post(f"/v1/cases/{case_id}/commands", tokens.body, json=command)
        assert answer.status_code == 200, answer.text
    return case_id


async def test_reset_to_event_takes_the_number_history_prints(
    api: Api, tokens: Tokens, store: EventStore, ops_cli: Cli
) -> None:
    case_id = await open_case(api, tokens)
    status, out, err = await ops_cli.run_async("history", case_id)
    assert status == 0, err
    numbered = {int(line.split()[0]): line.split()[3] for line in out.splitlines()[1:] if line[:4].strip().isdigit()}
    assert numbered == {1: "PetitionReceived", 2: "Classified", 3: "AcceptanceDecided"}, out

    # Just after event 2 (Classified) was stored: only the accept is decided again.
    status, out, err = await ops_cli.run_async("reset", case_id, "--reason", REASON, "--to-event", "2", "--dry-run",
                                               "--json")
    assert status == 0, err
    plan = json.loads(out)["plan"]
    assert plan["after_version"] == 2 and plan["stream_version"] == 3
    assert [(u["name"], u["command_type"]) for u in plan["updates"]] == [("accept", "accept")]
    assert plan["reset_to_time"].endswith("+07:00")
    status, out, err = await ops_cli.run_async("reset", case_id, "--reason", REASON, "--to-event", "1", "--dry-run")
    assert status == 0, err
    assert re.match(rf"reset {case_id} to just after event 1, Temporal event \d+ \(\d{{4}}-\d\d-\d\d "
                    r"\d\d:\d\d:\d\d\+07:00\); ", out), out
    assert "re-run classify classify" in out and "re-run accept accept" in out and "(dry run: nothing changed)" in out

    # An event this run did not store is refused, saying which it did; nothing changes.
    status, out, err = await ops_cli.run_async("reset", case_id, "--reason", REASON, "--to-event", "9", "--dry-run")
    assert (status, out) == (1, ""), out
    assert "repair.reset.point: event 9" in err and "it stored events 1 to 3" in err, err

    # Done for real: the case resumes after event 2, the accept is adopted, not appended twice.
    status, out, err = await ops_cli.run_async("reset", case_id, "--reason", REASON, "--to-event", "2")
    assert status == 0, err
    stored = await store.read_stream(case_id)
    assert [e.type for e in stored] == ["PetitionReceived", "Classified", "AcceptanceDecided", "RepairRecorded"]
    assert stored[-1].data["detail"]["after_version"] == 2
    assert (await store.verify(case_id)).ok
    answer = await api.post(f"/v1/cases/{case_id}/commands", tokens.body,
                            json={"type": "assign", "body": "UBND_TINH", "officer": "Cán bộ Đinh Thị Lan"})
    assert answer.status_code == 200, answer.text


async def test_history_with_the_process_and_stalled_show_vietnam_time(
    api: Api, tokens: Tokens, ops_cli: Cli
) -> None:
    case_id = await open_case(api, tokens)
    status, out, err = await ops_cli.run_async("history", case_id, "--process")
    assert status == 0, err
    assert out.splitlines()[0].endswith("; times in Vietnam (+07:00)")
    process = [line for line in out.splitlines() if line.startswith("      · ")]
    assert process and all(re.match(r"      · \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+07:00  ", line) for line in process)
    status, out, err = await ops_cli.run_async("history", case_id, "--process", "--json")
    assert status == 0, err
    answer = json.loads(out)
    assert all(entry["at"].endswith("+07:00") for entry in answer["timeline"])
    assert all(run["started_at"].endswith("+07:00") for run in answer["process"]["runs"])
    status, out, err = await ops_cli.run_async("stalled", "--json", "--kind", "complaint", "--idle-hours", "0.001")
    assert status == 0, err
    assert all(s["since"] is None or s["since"].endswith("+07:00") for s in json.loads(out))
