"""No petitioner's identity anywhere but in the vault: `danvan up` as a user runs it, petitions of every kind
driven through the API, then every store searched for the identities in clear.

Searched: Temporal's SQLite file (and its WAL), every text, json and bytea column of every table of the
stack's PostgreSQL database, every log file the stack wrote, and every answer of the API (case, history,
history with the process, list, reads) to every role. Only `GET /v1/cases/{id}/petitioner`, to the lead body
or a supervisor, may answer with an identity. Each search is first shown to find what is in clear there (the
case ids, the subject lines), so a search that cannot see anything cannot pass.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio

from api.console.session import SESSION_COOKIE
from api.sessions import create_session
from api.tokens import hash_token
from tests.conftest import free_port
from tests.integration.test_up import UpProcess

pytestmark = pytest.mark.slow

LEAD = "UBND_TINH"
COORDINATOR = "SO_TAI_NGUYEN"  # `danvan up`'s own body token is of a third body, BDV_TU's successor


@dataclass
class Person:
    name: str
    phone: str
    id_number: str
    email: str
    address: str

    def secrets(self) -> list[str]:
        return [self.name, self.phone, self.id_number, self.email, self.address]

    def body(self) -> dict[str, str]:
        return {"name": self.name, "phone": self.phone, "id_number": self.id_number, "email": self.email,
                "address": self.address}


def person(i: int) -> Person:
    names = ["Nguyễn Thị Ánh Tuyết", "Trần Đức Thắng", "Lê Thị Hồng Nhung", "Phạm Văn Đông", "Hoàng Thị Huệ",
             "Vũ Quốc Việt", "Đặng Thị Ngọc Ẩn"]
    return Person(name=f"{names[i]} {chr(0x1EA0 + i)}", phone=f"0987{i:02d}4321", id_number=f"03019{i:02d}12345",
                  email=f"nguoi.gui.{i}@thu-dien-tu.vn", address=f"Số {i + 11} ngõ Trúc Lạc, phường Đồng Xuân")


@dataclass
class Stack:
    api: str
    ui: str
    home: Path
    env: dict[str, str]
    database_url: str
    tokens: dict[str, str]
    issued: dict[str, str] = field(default_factory=dict)  # "lead", "coordinator" -> token
    cases: dict[str, str] = field(default_factory=dict)  # label -> case id
    people: dict[str, Person] = field(default_factory=dict)  # label -> who petitioned

    def auth(self, role: str) -> dict[str, str]:
        token = self.issued.get(role) or self.tokens[role]
        return {"Authorization": f"Bearer {token}"}


@pytest_asyncio.fixture
async def stack(tmp_path: Path, new_database: Callable[[], Awaitable[str]]) -> AsyncIterator[Stack]:
    home = tmp_path / "home"
    url = await new_database()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DANVAN_")}
    temporal_port, ui_port, api_port = free_port(), free_port(), free_port()
    env.update(DANVAN_HOME=str(home), DATABASE_URL=url, TEMPORAL_ADDRESS=f"127.0.0.1:{temporal_port}",
               DANVAN_TEMPORAL_UI_PORT=str(ui_port), DANVAN_API_PORT=str(api_port), DANVAN_LOG_LEVEL="DEBUG")
    up = UpProcess(home, env)
    try:
        await asyncio.to_thread(up.wait_up)
        tokens = json.loads((home / "tokens.json").read_text())
        yield Stack(api=f"http://127.0.0.1:{api_port}", ui=f"http://127.0.0.1:{ui_port}", home=home, env=env,
                    database_url=url, tokens=tokens)
    finally:
        assert await asyncio.to_thread(up.interrupt) == 0, "".join(up.output)


async def send(http: httpx.AsyncClient, stack: Stack, case: str, command: dict[str, Any]) -> dict[str, Any]:
    answer = await http.post(f"/v1/cases/{stack.cases[case]}/commands", json=command, headers=stack.auth("lead"))
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


async def wait_for_case(http: httpx.AsyncClient, stack: Stack, case_id: str) -> dict[str, Any]:
    for _ in range(100):
        found = await http.get(f"/v1/cases/{case_id}", headers=stack.auth("supervisor"))
        if found.status_code == 200:
            answer: dict[str, Any] = found.json()
            return answer
        await asyncio.sleep(0.1)
    raise AssertionError(f"case {case_id} never opened")


async def drive(stack: Stack) -> None:
    """Petitions of every kind, a complaint reclassified as a denunciation, a split letter, an appeal."""
    async with httpx.AsyncClient(base_url=stack.api, timeout=30) as http:
        for name, body_id in (("lead", LEAD), ("coordinator", COORDINATOR)):
            issued = await http.post("/v1/tokens", json={"role": "body", "body_id": body_id, "label": f"cán bộ {name}"},
                                     headers=stack.auth("admin"))
            assert issued.status_code == 201, issued.text
            stack.issued[name] = issued.json()["token"]
        plan = [("complaint", "complaint"), ("denunciation", "denunciation"), ("recommendation", "recommendation"),
                ("voter_petition", "voter_petition"), ("reclassified", "complaint"), ("split", "complaint"),
                ("anonymous", "denunciation")]
        for i, (label, kind) in enumerate(plan):
            who = person(i)
            identity = {"name": who.name} if label == "anonymous" else who.body()
            stack.people[label] = who
            body = {"source": "local-backoffice", "external_ref": f"SEAL-{label}", "kind": kind,
                    "received_at": datetime.now(UTC).isoformat(), "subject": f"Đơn {label} về đất đai",
                    "content": "Nội dung đơn thư về việc thu hồi đất.", "district": "Nam Sách",
                    "receiving_body": LEAD, "petitioner": identity}
            opened = await http.post("/v1/petitions", json=body, headers=stack.auth("intake"))
            assert opened.status_code == 201, opened.text
            assert all(s not in opened.text for s in who.secrets())
            stack.cases[label] = opened.json()["case_id"]
            again = await http.post("/v1/petitions", json=body, headers=stack.auth("intake"))
            assert again.status_code == 200 and again.json()["case_id"] == stack.cases[label], again.text
        other = {**body, "petitioner": person(0).body()}  # the last one again, with another person
        conflict = await http.post("/v1/petitions", json=other, headers=stack.auth("intake"))
        assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "petition.conflict"

        coordination = {"type": "request_coordination", "subject": "Cung cấp hồ sơ",
                        "bodies": [{"body": COORDINATOR, "side": "state", "days": 5}]}
        for label in ("complaint", "denunciation", "recommendation", "voter_petition"):
            await send(http, stack, label, {"type": "classify", "lead_body": LEAD})
        await send(http, stack, "complaint", {"type": "accept", "decision_no": "1/QĐ"})
        await send(http, stack, "complaint", coordination)
        await send(http, stack, "complaint", {"type": "decide", "outcome": "not_upheld", "decision_no": "2/QĐ",
                                              "summary": "Không có căn cứ"})
        appealed = await send(http, stack, "complaint", {"type": "appeal"})
        stack.cases["appeal"] = appealed["case"]["linked_cases"][-1]
        stack.people["appeal"] = stack.people["complaint"]

        reclassified = await send(http, stack, "reclassified", {"type": "classify", "kind": "denunciation",
                                                                 "lead_body": LEAD})
        assert reclassified["status"] == "classified", reclassified
        await send(http, stack, "reclassified", {"type": "accept", "decision_no": "3/QĐ"})
        await send(http, stack, "reclassified", coordination)

        split = await send(http, stack, "split", {"type": "split", "parts": [
            {"kind": "complaint", "subject": "Phần khiếu nại", "content": "Khiếu nại bồi thường."},
            {"kind": "denunciation", "subject": "Phần tố cáo", "content": "Tố cáo cán bộ."}]})
        for n, part in enumerate(split["case"]["linked_cases"], start=1):
            stack.cases[f"split-{n}"] = part
            stack.people[f"split-{n}"] = stack.people["split"]

        anonymous = await send(http, stack, "anonymous", {"type": "classify", "lead_body": LEAD})
        assert anonymous["status"] == "not_processed", anonymous  # a name and no way to find its writer
        for label in ("appeal", "split-1", "split-2"):
            await wait_for_case(http, stack, stack.cases[label])
            if label != "appeal":
                await send(http, stack, label, {"type": "classify", "lead_body": LEAD})


def forms(secret: str) -> list[bytes]:
    """How a text can be stored: UTF-8, and JSON with \\u escapes."""
    return [secret.encode(), json.dumps(secret).strip('"').encode()]


def all_secrets(stack: Stack) -> list[str]:
    return sorted({s for who in stack.people.values() for s in who.secrets()})


def leaks(data: bytes, secrets: list[str]) -> list[str]:
    return [s for s in secrets if any(f in data for f in forms(s))]


async def search_database(url: str, needles: list[str]) -> dict[str, list[str]]:
    """Every text, json and bytea column of every table: which needles each holds."""
    conn = await asyncpg.connect(url)
    try:
        columns = await conn.fetch(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public' AND data_type IN ('text', 'character varying', 'json', 'jsonb', 'bytea')")
        found: dict[str, list[str]] = {}
        for col in columns:
            ref = f'"{col["table_name"]}"."{col["column_name"]}"'
            column = f'"{col["column_name"]}"'
            match = (f"position(convert_to($1, 'UTF8') in {column}) > 0" if col["data_type"] == "bytea"
                     else f"strpos({column}::text, $1) > 0")
            for needle in needles:
                hit = await conn.fetchval(f'SELECT EXISTS (SELECT 1 FROM "{col["table_name"]}" WHERE {match})',
                                          needle)
                if hit:
                    found.setdefault(needle, []).append(ref)
        return found
    finally:
        await conn.close()


async def every_answer(stack: Stack) -> dict[str, str]:
    """Every read answer of the API about every case, to every role: `role what case` -> body."""
    answers: dict[str, str] = {}
    roles = ["intake", "lead", "coordinator", "body", "supervisor", "operator", "admin"]
    async with httpx.AsyncClient(base_url=stack.api, timeout=60) as http:
        for role in roles:
            listed = await http.get("/v1/cases", params={"limit": 200}, headers=stack.auth(role))
            answers[f"{role} list"] = listed.text
            for label, case_id in stack.cases.items():
                for what, path, params in (("case", f"/v1/cases/{case_id}", {}),
                                           ("history", f"/v1/cases/{case_id}/history", {}),
                                           ("process", f"/v1/cases/{case_id}/history", {"include": "process"}),
                                           ("reads", f"/v1/cases/{case_id}/reads", {})):
                    answer = await http.get(path, params=params, headers=stack.auth(role))
                    assert answer.status_code in (200, 403), f"{role} {what} {label}: {answer.text}"
                    answers[f"{role} {what} {label}"] = answer.text
    return answers


async def test_no_identity_in_clear_in_temporal_postgresql_logs_or_any_answer_but_the_petitioner_endpoint(
    stack: Stack,
) -> None:
    await drive(stack)
    secrets = all_secrets(stack)
    assert len(secrets) == 5 * 7  # seven people, five facts each

    # Every API answer to every role, but the petitioner endpoint.
    answers = await every_answer(stack)
    assert any(stack.cases["complaint"] in body for body in answers.values())
    leaked = {where: leaks(body.encode(), secrets) for where, body in answers.items()}
    assert {k: v for k, v in leaked.items() if v} == {}

    # Temporal's SQLite file: the case ids are there in clear, no identity is, and the payloads are encrypted.
    sqlite = b"".join(p.read_bytes() for p in sorted(stack.home.glob("temporal.sqlite*")))
    assert stack.cases["split-2"].encode() in sqlite and b"binary/encrypted" in sqlite
    assert leaks(sqlite, secrets) == []
    assert "Đơn complaint về đất đai".encode() not in sqlite  # the subject is a payload too: encrypted

    # PostgreSQL: subjects are in the events, no identity is anywhere.
    found = await search_database(stack.database_url, [*secrets, "Đơn complaint về đất đai"])
    assert found.pop("Đơn complaint về đất đai")
    assert found == {}

    # Every log file the stack wrote (DEBUG level), which did log the cases.
    logs = sorted((stack.home / "logs").glob("*.log"))
    assert {p.name for p in logs} >= {"temporal.log", "worker.log", "api.log"}
    text = b"".join(p.read_bytes() for p in logs)
    assert stack.cases["complaint"].encode() in text
    assert leaks(text, secrets) == []

    # The petitioner endpoint: the lead body and supervisors, for every kind; nobody else, ever.
    async with httpx.AsyncClient(base_url=stack.api, timeout=30) as http:
        for label, case_id in stack.cases.items():
            who = stack.people[label]
            for role in ("lead", "supervisor"):
                got = await http.get(f"/v1/cases/{case_id}/petitioner", params={"purpose": "giải quyết đơn"},
                                     headers=stack.auth(role))
                assert got.status_code == 200, f"{role} {label}: {got.text}"
                assert got.json()["name"] == who.name
            for role in ("coordinator", "body", "intake", "operator", "admin"):
                refused = await http.get(f"/v1/cases/{case_id}/petitioner", params={"purpose": "tò mò muốn biết"},
                                         headers=stack.auth(role))
                assert refused.status_code == 403, f"{role} {label}: {refused.text}"
                assert not leaks(refused.content, who.secrets())
        # A case that became a denunciation is read under that regime: its reads are recorded.
        reads = await http.get(f"/v1/cases/{stack.cases['reclassified']}/reads", headers=stack.auth("supervisor"))
        assert {r["role"] for r in reads.json()["reads"]} >= {"body", "supervisor", "operator", "admin"}
        plain = await http.get(f"/v1/cases/{stack.cases['recommendation']}/reads", headers=stack.auth("supervisor"))
        assert plain.json()["reads"] == []

        # The codec endpoint: the Web UI's origin may call it with credentials, the console session reaches it
        # under /console, and only cleared roles are answered.
        history = await http.get(f"/v1/cases/{stack.cases['complaint']}/history", headers=stack.auth("supervisor"))
        assert history.status_code == 200
        preflight = await http.options("/console/codec/decode", headers={
            "Origin": stack.ui, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-namespace"})
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == stack.ui
        assert preflight.headers["access-control-allow-credentials"] == "true"
        foreign = await http.options("/v1/cases", headers={"Origin": stack.ui, "Access-Control-Request-Method": "GET"})
        assert "access-control-allow-origin" not in foreign.headers
        empty: dict[str, list[Any]] = {"payloads": []}
        conn = await asyncpg.connect(stack.database_url)
        try:  # a signed-in console session of each role, as signing in makes one
            sessions = {role: await create_session(conn, hash_token(stack.tokens[role]), absolute=600)
                        for role in ("supervisor", "operator", "admin", "body", "intake")}
        finally:
            await conn.close()
        for cookie_role, status in (("supervisor", 200), ("operator", 200), ("admin", 200), ("body", 403),
                                    ("intake", 403)):
            answer = await http.post("/console/codec/decode", json=empty, headers={
                "Origin": stack.ui, "Cookie": f"{SESSION_COOKIE}={sessions[cookie_role]}"})
            assert answer.status_code == status, f"{cookie_role}: {answer.text}"
        assert (await http.post("/codec/decode", json=empty)).status_code == 401
        settings = await http.get(f"{stack.ui}/api/v1/settings")
        assert f"{stack.api}/console/codec" in settings.text


async def test_an_erased_identity_is_unreadable_the_erasure_is_recorded_and_every_chain_verifies(
    stack: Stack,
) -> None:
    async with httpx.AsyncClient(base_url=stack.api, timeout=30) as http:
        who = person(1)
        body = {"source": "local-backoffice", "external_ref": "SEAL-erase", "kind": "denunciation",
                "received_at": datetime.now(UTC).isoformat(), "subject": "Tố cáo cán bộ", "content": "Nội dung.",
                "receiving_body": LEAD, "petitioner": who.body()}
        opened = await http.post("/v1/petitions", json=body, headers=stack.auth("intake"))
        assert opened.status_code == 201, opened.text
        case_id, ref = opened.json()["case_id"], opened.json()["case"]["petitioner_ref"]
        stack.cases["erase"] = case_id
        issued = await http.post("/v1/tokens", json={"role": "body", "body_id": LEAD, "label": "cán bộ lead"},
                                 headers=stack.auth("admin"))
        assert issued.status_code == 201, issued.text
        stack.issued["lead"] = issued.json()["token"]
        await send(http, stack, "erase", {"type": "classify", "lead_body": LEAD})
        before = await http.get(f"/v1/cases/{case_id}/petitioner", params={"purpose": "trước khi xoá"},
                                headers=stack.auth("supervisor"))
        assert before.status_code == 200 and before.json()["phone"] == who.phone

        cli = [sys.executable, "-m", "danvan.cli"]
        refused = await asyncio.to_thread(subprocess.run, [*cli, "identity", "erase", ref, "--reason", "ngắn"],
                                          env=stack.env, capture_output=True, text=True, timeout=60)
        assert refused.returncode == 2 and "--reason" in refused.stderr  # bad usage, like the API's 422
        reason = "người tố cáo yêu cầu xoá dữ liệu"
        erased = await asyncio.to_thread(subprocess.run, [*cli, "identity", "erase", ref, "--reason", reason],
                                         env=stack.env, capture_output=True, text=True, timeout=60)
        assert erased.returncode == 0, erased.stderr
        assert f"erased {ref}" in erased.stdout

        after = await http.get(f"/v1/cases/{case_id}/petitioner", params={"purpose": "sau khi xoá"},
                               headers=stack.auth("supervisor"))
        assert after.status_code == 410 and after.json()["error"]["code"] == "identity.erased"
        assert "người tố cáo yêu cầu xoá dữ liệu" in after.json()["error"]["message"]
        again = await http.post(f"/v1/identities/{ref}/erase", json={"reason": "lần thứ hai cho chắc"},
                                headers=stack.auth("admin"))
        assert again.status_code == 409 and again.json()["error"]["code"] == "identity.erased"
        resent = await http.post("/v1/petitions", json=body, headers=stack.auth("intake"))
        assert resent.status_code == 409 and resent.json()["error"]["code"] == "identity.erased"
        # The case goes on: the events hold only the ref.
        await send(http, stack, "erase", {"type": "accept", "decision_no": "5/QĐ"})

    verify = await asyncio.to_thread(subprocess.run, [*cli, "verify"], env=stack.env, capture_output=True, text=True,
                                     timeout=120)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    conn = await asyncpg.connect(stack.database_url)
    try:
        row = await conn.fetchrow("SELECT nonce, ciphertext, wrapped_key, erased_at FROM sealed_identities "
                                  "WHERE ref = $1", ref)
        assert row["nonce"] is None and row["ciphertext"] is None and row["wrapped_key"] is None
        assert row["erased_at"] is not None
        record = await conn.fetchrow("SELECT case_id, erased_by, role, reason FROM identity_erasures WHERE ref = $1",
                                     ref)
        assert record["case_id"] == case_id and record["role"] == "operator" and "@" in record["erased_by"]
        assert record["reason"] == "người tố cáo yêu cầu xoá dữ liệu"
        reads = await conn.fetch("SELECT purpose FROM identity_reads WHERE ref = $1 ORDER BY id", ref)
        assert [r["purpose"] for r in reads] == ["trước khi xoá", "sau khi xoá"]  # the refused read is recorded
    finally:
        await conn.close()
    found = await search_database(stack.database_url, who.secrets())
    assert found == {}
