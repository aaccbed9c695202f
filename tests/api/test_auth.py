"""Who may call what: every endpoint against every role, body scoping, and token revocation."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
import pytest_asyncio

from api.auth import TokenCache, require
from api.tokens import Principal
from eventstore import EventStore

from .support import Api, petition, seed_case, small_plan, token, unique, unique_body

ROLES = ("intake", "body", "supervisor", "operator", "admin")

#: Every authenticated endpoint: method, path (with `{case}` for the world's case), roles allowed.
ENDPOINTS: dict[str, tuple[str, str, frozenset[str]]] = {
    "get case": ("GET", "/v1/cases/{case}", frozenset({"intake", "body", "supervisor", "operator", "admin"})),
    "case history": ("GET", "/v1/cases/{case}/history", frozenset({"body", "supervisor", "operator", "admin"})),
    "list cases": ("GET", "/v1/cases", frozenset({"body", "supervisor", "operator", "admin"})),
    "event feed": ("GET", "/v1/events", frozenset({"intake", "body", "supervisor", "operator", "admin"})),
    "case events": ("GET", "/v1/cases/{case}/events", frozenset({"body", "supervisor", "operator", "admin"})),
    "issue token": ("POST", "/v1/tokens", frozenset({"admin"})),
    "receive petition": ("POST", "/v1/petitions", frozenset({"intake", "admin"})),
    # Every role reaches the route; who may send a command is the case's authority table (the `assign` sent to a
    # fresh petition received by body A: its lead, so only body A's token).
    "command a case": ("POST", "/v1/cases/{case}/commands", frozenset({"body"})),
    "period report": ("GET", "/v1/reports/{period}", frozenset({"body", "supervisor", "operator", "admin"})),
    "import the plan": ("POST", "/v1/plan/import", frozenset({"admin"})),
    "import open cases": ("POST", "/v1/import/cases", frozenset({"admin"})),
    "case counts": ("GET", "/v1/cases/counts", frozenset({"body", "supervisor", "operator", "admin"})),
    "export cases": ("GET", "/v1/cases/export", frozenset({"body", "supervisor", "operator", "admin"})),
    "who read a case": ("GET", "/v1/cases/{case}/reads", frozenset({"supervisor", "admin"})),
    "denouncer's identity": ("GET", "/v1/cases/{case}/petitioner", frozenset({"body", "supervisor"})),
    "stalled cases": ("GET", "/v1/ops/stalled", frozenset({"supervisor", "operator", "admin"})),
    "scan for stalled cases now": ("POST", "/v1/ops/stalled/scan", frozenset({"operator", "admin"})),
    "retry a case": ("POST", "/v1/ops/cases/{case}/retry", frozenset({"operator", "admin"})),
    "reset a case": ("POST", "/v1/ops/cases/{case}/reset", frozenset({"operator", "admin"})),
    "nudge a case": ("POST", "/v1/ops/cases/{case}/nudge", frozenset({"operator", "admin"})),
    "reassign a case": ("POST", "/v1/ops/cases/{case}/reassign", frozenset({"operator", "admin"})),
    "retry stalled cases": ("POST", "/v1/ops/retry", frozenset({"operator", "admin"})),
    # Repair jobs: each call of a job's route has a fresh reset job of the world's petition, asked by another
    # operator, awaiting approval (a reset always needs one), so that an operator or an admin may approve it.
    "list jobs": ("GET", "/v1/ops/jobs", frozenset({"supervisor", "operator", "admin"})),
    "make a job": ("POST", "/v1/ops/jobs", frozenset({"operator", "admin"})),
    "get a job": ("GET", "/v1/ops/jobs/{job}", frozenset({"supervisor", "operator", "admin"})),
    **{f"{decision} a job": ("POST", f"/v1/ops/jobs/{{job}}/{decision}", frozenset({"operator", "admin"}))
       for decision in ("approve", "reject", "pause", "resume", "cancel")},
    "erase an identity": ("POST", "/v1/identities/{ref}/erase", frozenset({"admin"})),
    "decode payloads": ("POST", "/codec/decode", frozenset({"supervisor", "operator", "admin"})),
    "encode payloads": ("POST", "/codec/encode", frozenset({"supervisor", "operator", "admin"})),
    "metrics": ("GET", "/metrics", frozenset({"supervisor", "operator", "admin"})),
    # Webhooks: an admin, or an intake system for its own (the matrix's subscriptions are the intake's).
    "subscribe": ("POST", "/v1/subscriptions", frozenset({"intake", "admin"})),
    "list subscriptions": ("GET", "/v1/subscriptions", frozenset({"intake", "admin"})),
    "get a subscription": ("GET", "/v1/subscriptions/{subscription}", frozenset({"intake", "admin"})),
    "change a subscription": ("PATCH", "/v1/subscriptions/{subscription}", frozenset({"intake", "admin"})),
    "delete a subscription": ("DELETE", "/v1/subscriptions/{subscription}", frozenset({"intake", "admin"})),
    "replay a subscription": ("POST", "/v1/subscriptions/{subscription}/replay", frozenset({"intake", "admin"})),
    "subscription deliveries": ("GET", "/v1/subscriptions/{subscription}/deliveries",
                                frozenset({"intake", "admin"})),
    # A case's files: read as the case is read; added by those the `attach` row of the authority table names (a
    # fresh file to the running petition body A received and its intake system sent).
    "list a case's files": ("GET", "/v1/cases/{case}/attachments",
                            frozenset({"intake", "body", "supervisor", "operator", "admin"})),
    "read a case's file": ("GET", "/v1/cases/{case}/attachments/{sha256}",
                           frozenset({"intake", "body", "supervisor", "operator", "admin"})),
    "add a file": ("POST", "/v1/cases/{case}/attachments", frozenset({"intake", "body"})),
    # The remedies of the queue's other subjects: operators and admins.
    "retry a subscription": ("POST", "/v1/ops/subscriptions/{subscription}/retry", frozenset({"operator", "admin"})),
    "pause a subscription": ("POST", "/v1/ops/subscriptions/{subscription}/pause", frozenset({"operator", "admin"})),
    "replay a subscription now": ("POST", "/v1/ops/subscriptions/{subscription}/replay",
                                  frozenset({"operator", "admin"})),
    "checkpoint now": ("POST", "/v1/ops/checkpoints", frozenset({"operator", "admin"})),
}
#: Where an admitted role gets an answer other than 200/201: a repair that does not apply to the matrix's
#: healthy case is refused with 409 (after the role check).
ADMITTED: dict[str, set[int]] = {"retry a case": {409}, "reset a case": {409}, "reassign a case": {200, 409},
                                 "delete a subscription": {204},
                                 # only a running job is paused, only a paused one resumed
                                 "pause a job": {409}, "resume a job": {409},
                                 # the matrix's subscriptions are made paused
                                 "pause a subscription": {409}}
#: A job id that names none (for the calls refused before anything is looked up).
NO_JOB = "job_" + "0" * 20
#: A subscription id that names none (for the calls refused before anything is looked up).
NO_SUBSCRIPTION = "sub_" + "0" * 20
#: Where a refused role gets another code than `forbidden`, and what its message names instead of the roles.
REFUSED: dict[str, tuple[str, list[str]]] = {
    "command a case": ("authority.assign", ["lead body", "lead's superior", "commission"]),
    "add a file": ("authority.attach", ["intake system", "receiving body", "lead body"]),
}
#: The bodies of the operators' requests.
OPS_BODIES: dict[str, dict[str, object]] = {
    "retry a case": {"reason": "kiểm tra quyền truy cập"},
    "reset a case": {"reason": "kiểm tra quyền truy cập"},
    "nudge a case": {"reason": "kiểm tra quyền truy cập"},
    "reassign a case": {"reason": "kiểm tra quyền truy cập", "body": "UBND_TINH"},
    "retry stalled cases": {"reason": "kiểm tra quyền truy cập", "dry_run": True, "limit": 1},
}
JOB_REASON = {"reason": "kiểm tra quyền truy cập"}


@dataclass
class World:
    body_a: str
    body_b: str
    source: str
    case_a: str  # led by body A, sent by `source`
    case_b: str  # led by body B, coordinated by nobody else, sent by another system
    case_coord: str  # led by body B, body A coordinates
    petition: str  # a running petition case received by body A, sent by `source`
    plan_id: str
    tokens: dict[str, str]  # role -> token; "body" is body A's
    token_b: str
    requester: str  # another operator's token, which asks for the jobs


@pytest_asyncio.fixture(scope="module")
async def world(store: EventStore, api: Api) -> World:
    body_a, body_b, source = unique_body("A"), unique_body("B"), unique("intake-system")
    case_a = await seed_case(store, lead_body=body_a, source=source, district="Nam Sách")
    case_b = await seed_case(store, lead_body=body_b, source=unique("other-system"))
    case_coord = await seed_case(store, lead_body=body_b, bodies=[body_a], source=source)
    tokens = {
        "intake": await token(store, "intake", label=source),
        "body": await token(store, "body", body_a, label="staff of A"),
        "supervisor": await token(store, "supervisor"),
        "operator": await token(store, "operator"),
        "admin": await token(store, "admin"),
    }
    opened = await api.post("/v1/petitions", tokens["intake"], json=petition(source, receiving_body=body_a))
    assert opened.status_code == 201, opened.text
    return World(body_a, body_b, source, case_a, case_b, case_coord, opened.json()["case_id"],
                 unique("KH-MATRIX"), tokens,
                 await token(store, "body", body_b), await token(store, "operator", label=unique("requester")))


async def call(api: Api, endpoint: str, world: World, tok: str | None) -> httpx.Response:
    method, path, _ = ENDPOINTS[endpoint]
    if endpoint == "receive petition":
        return await api.post(path, tok, json=petition(world.source))
    if endpoint == "import the plan":
        return await api.http.post(path, content=small_plan(world.plan_id).encode(),
                                   headers={**({"Authorization": f"Bearer {tok}"} if tok else {}),
                                            "Content-Type": "application/yaml"})
    if endpoint == "import open cases":  # a line the rules refuse: reported in a 200, nothing started
        line = json.dumps({"intake": petition(world.source), "steps": [
            {"at": datetime.now(UTC).isoformat(), "command": {"type": "accept", "decision_no": "1/QĐ"}}]})
        return await api.http.post(path, content=line.encode(), headers={
            **({"Authorization": f"Bearer {tok}"} if tok else {}), "Content-Type": "application/x-ndjson"})
    if endpoint == "command a case":
        opened = await api.post("/v1/petitions", world.tokens["intake"],
                                json=petition(world.source, receiving_body=world.body_a))
        assert opened.status_code == 201, opened.text
        command = {"type": "assign", "body": "UBND_TINH", "officer": unique("officer")}
        return await api.post(path.format(case=opened.json()["case_id"]), tok, json=command)
    if endpoint == "denouncer's identity":  # a sealed denunciation that body A leads
        from domain.petitions.model import Petitioner

        store = api.app.state.store
        case_id = unique("pet-sealed")
        sealed = await api.app.state.vault.seal(case_id, world.source, unique("ref"), Petitioner(name="Ẩn Danh"))
        await seed_case(store, case_id=case_id, kind="denunciation", lead_body=world.body_a,
                        summary={"petitioner_ref": sealed.ref})
        return await api.get(path.format(case=case_id), tok, params={"purpose": "the matrix checks roles"})
    if endpoint == "erase an identity":  # a fresh identity each time, so an admitted call erases it
        from domain.petitions.model import Petitioner

        sealed = await api.app.state.vault.seal(unique("pet-erase"), world.source, unique("ref"),
                                                Petitioner(name="Xoá Thử"))
        return await api.post(path.format(ref=sealed.ref), tok, json={"reason": "the matrix checks roles"})
    if endpoint in ("add a file", "read a case's file"):
        pdf = b"%PDF-1.7\n" + uuid.uuid4().bytes
        sender = tok if endpoint == "add a file" else world.tokens["intake"]
        added = await api.post(path.format(case=world.petition) if endpoint == "add a file"
                               else f"/v1/cases/{world.petition}/attachments", sender,
                               files={"file": ("tệp.pdf", pdf, "application/pdf")})
        if endpoint == "add a file":
            return added
        assert added.status_code == 201, added.text
        return await api.get(path.format(case=world.petition, sha256=added.json()["attachment"]["sha256"]), tok)
    if endpoint in ("decode payloads", "encode payloads"):
        return await api.post(path, tok, json={"payloads": []})
    if endpoint in OPS_BODIES:
        return await api.post(path.format(case=world.petition), tok, json=OPS_BODIES[endpoint])
    if endpoint == "make a job":
        return await api.post(path, tok, json={"action": "nudge", "target": {"case_ids": [world.petition]},
                                               "dry_run": True, **JOB_REASON})
    if "{job}" in path:
        made = await api.post("/v1/ops/jobs", world.requester, json={
            "action": "reset", "target": {"case_ids": [world.petition]}, **JOB_REASON})
        assert made.status_code == 200, made.text
        url = path.format(job=made.json()["job"]["job_id"])
        return await (api.get(url, tok) if method == "GET" else api.post(url, tok, json=JOB_REASON))
    remedy = {"reason": "kiểm tra quyền truy cập"}
    if endpoint == "checkpoint now":
        return await api.post(path, tok, json=remedy)
    if path.startswith("/v1/ops/subscriptions/"):
        made = await api.post("/v1/subscriptions", world.tokens["intake"],
                              json={"url": "http://127.0.0.1:9/hook", "status": "paused"})
        assert made.status_code == 201, made.text
        return await api.post(path.format(subscription=made.json()["id"]), tok, json=remedy)
    if "{subscription}" in path or endpoint == "subscribe":  # a fresh subscription of the world's intake system
        made = await api.post("/v1/subscriptions", world.tokens["intake"],
                              json={"url": "http://127.0.0.1:9/hook", "status": "paused"})
        assert made.status_code == 201, made.text
        if endpoint == "subscribe":
            return await api.post(path, tok, json={"url": "http://127.0.0.1:9/hook", "status": "paused"})
        body = {"status": "paused"} if method == "PATCH" else None
        return await api.http.request(method, path.format(subscription=made.json()["id"]),
                                      headers={"Authorization": f"Bearer {tok}"} if tok else {}, json=body)
    url = path.format(case=world.case_a, period="2026", ref="sealed-none", subscription=NO_SUBSCRIPTION, job=NO_JOB)
    if method == "POST":
        return await api.post(url, tok, json={"role": "supervisor", "label": "issued by the matrix"})
    return await api.get(url, tok)


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]


def test_the_matrix_covers_every_endpoint_and_only_the_probes_need_no_token(api: Api) -> None:
    operations = [
        (method.upper(), path.replace("{case_id}", "{case}").replace("{subscription_id}", "{subscription}")
         .replace("{job_id}", "{job}"), operation)
        for path, item in api.app.openapi()["paths"].items()
        for method, operation in item.items()
    ]
    secured = {(method, path) for method, path, op in operations if op.get("security") == [{"HTTPBearer": []}]}
    open_ = {(method, path) for method, path, op in operations if "security" not in op}
    assert secured == {(method, path) for method, path, _ in ENDPOINTS.values()}
    assert open_ == {("GET", "/healthz"), ("GET", "/readyz")}


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_a_request_without_a_token_is_401_with_a_bearer_challenge(api: Api, world: World, endpoint: str) -> None:
    response = await call(api, endpoint, world, None)
    assert_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "dv_no_scheme", "Bearer dv_unknown_token_xyz"])
async def test_a_malformed_or_unknown_token_is_401(api: Api, world: World, endpoint: str, header: str) -> None:
    method, path, _ = ENDPOINTS[endpoint]
    url = path.format(case=world.case_a, period="2026", ref="sealed-none", subscription=NO_SUBSCRIPTION,
                      sha256="0" * 64, job=NO_JOB)
    response = await api.http.request(method, url, headers={"Authorization": header})
    assert_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_each_role_is_admitted_only_where_allowed(api: Api, world: World, endpoint: str, role: str) -> None:
    response = await call(api, endpoint, world, world.tokens[role])
    allowed = ENDPOINTS[endpoint][2]
    if role in allowed:
        assert response.status_code in ADMITTED.get(endpoint, {200, 201}), response.text
    else:
        code, named = REFUSED.get(endpoint, ("forbidden", sorted(allowed)))
        assert_error(response, 403, code)
        for allowed_one in named:
            assert allowed_one in response.json()["error"]["message"]


@pytest.mark.parametrize("path", ["/v1/cases/{case}", "/v1/cases/{case}/history"])
async def test_a_body_token_is_refused_another_bodys_case(api: Api, world: World, path: str) -> None:
    response = await api.get(path.format(case=world.case_b), world.tokens["body"])
    assert_error(response, 403, "forbidden")
    assert world.body_a in response.json()["error"]["message"]


@pytest.mark.parametrize("path", ["/v1/cases/{case}", "/v1/cases/{case}/history"])
async def test_a_body_token_reads_the_cases_it_leads_or_coordinates(api: Api, world: World, path: str) -> None:
    for case in (world.case_a, world.case_coord):
        response = await api.get(path.format(case=case), world.tokens["body"])
        assert response.status_code == 200, response.text


async def test_another_body_reads_its_own_case_but_not_the_first_bodys(api: Api, world: World) -> None:
    assert (await api.get(f"/v1/cases/{world.case_b}", world.token_b)).status_code == 200
    assert_error(await api.get(f"/v1/cases/{world.case_a}", world.token_b), 403, "forbidden")


async def test_an_intake_token_reads_only_the_cases_its_system_sent(api: Api, world: World) -> None:
    assert (await api.get(f"/v1/cases/{world.case_a}", world.tokens["intake"])).status_code == 200
    assert_error(await api.get(f"/v1/cases/{world.case_b}", world.tokens["intake"]), 403, "forbidden")


async def test_the_list_is_forced_to_the_bodys_own_cases(api: Api, world: World) -> None:
    seen: set[str] = set()
    cursor = None
    while True:
        params = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        response = await api.get("/v1/cases", world.tokens["body"], params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        for item in page["items"]:
            assert item["lead_body"] == world.body_a or world.body_a in item["bodies"]
            seen.add(item["case_id"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert {world.case_a, world.case_coord} <= seen
    assert world.case_b not in seen


async def test_a_body_token_filtering_by_another_body_finds_only_the_cases_it_may_read(
    api: Api, world: World
) -> None:
    response = await api.get("/v1/cases", world.tokens["body"], params={"body": world.body_b, "limit": 200})
    assert response.status_code == 200
    ids = {item["case_id"] for item in response.json()["items"]}
    assert world.case_coord in ids  # led by B, coordinated by A
    assert world.case_b not in ids  # B's alone
    counted = await api.get("/v1/cases/counts", world.tokens["body"], params={"body": world.body_b})
    assert counted.status_code == 200 and counted.json()["total"] == len(ids)
    own = await api.get("/v1/cases", world.tokens["body"], params={"body": world.body_a})
    assert own.status_code == 200


async def test_a_supervisor_lists_any_bodys_cases(api: Api, world: World) -> None:
    response = await api.get("/v1/cases", world.tokens["supervisor"], params={"body": world.body_b})
    ids = {item["case_id"] for item in response.json()["items"]}
    assert {world.case_b, world.case_coord} <= ids
    assert world.case_a not in ids


async def test_a_revoked_token_stops_working_once_the_cache_is_cleared(api: Api, store: EventStore) -> None:
    tok = await token(store, "supervisor", label=unique("revoked"))
    assert (await api.get("/v1/cases", tok, params={"limit": 1})).status_code == 200
    await store.pool.execute(
        "UPDATE api_tokens SET revoked_at = now() WHERE token_hash = encode(sha256(convert_to($1, 'UTF8')), 'hex')",
        tok,
    )
    api.app.state.token_cache.clear()
    response = await api.get("/v1/cases", tok, params={"limit": 1})
    assert_error(response, 401, "unauthorized")


async def test_a_revoked_token_stops_working_within_the_cache_ttl(api: Api, store: EventStore) -> None:
    tok = await token(store, "operator", label=unique("revoked-ttl"))
    assert (await api.get("/v1/cases", tok, params={"limit": 1})).status_code == 200
    await store.pool.execute(
        "UPDATE api_tokens SET revoked_at = now() WHERE token_hash = encode(sha256(convert_to($1, 'UTF8')), 'hex')",
        tok,
    )
    ttl = api.app.state.token_cache.ttl
    await asyncio.sleep(ttl + 0.1)
    assert_error(await api.get("/v1/cases", tok, params={"limit": 1}), 401, "unauthorized")


def test_the_token_cache_is_bounded_and_expires_entries() -> None:
    cache = TokenCache(ttl=60, max_entries=3)
    principal = Principal(role="admin", label="x", id="abc")
    for i in range(5):
        cache.put(f"h{i}", principal)
    assert len(cache) == 3
    assert cache.get("h0") is None and cache.get("h4") == principal
    expired = TokenCache(ttl=0)
    expired.put("h", principal)
    assert expired.get("h") is None


def test_require_refuses_an_unknown_role() -> None:
    with pytest.raises(ValueError, match="king"):
        require("king")  # type: ignore[arg-type]
