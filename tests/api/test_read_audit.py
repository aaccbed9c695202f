"""Who read a denunciation, and who may read the denouncer's identity (Luật Tố cáo 2018: kept secret)."""

from __future__ import annotations

from typing import Any

import pytest_asyncio

from api.identities import IdentityVault
from domain.petitions.model import Petitioner
from eventstore import EventStore

from .support import Api, petition, seed_case, token, unique

SECRET_NAME = "Lê Thị Giấu Tên"
SECRET_PHONE = "0987654321"


class Tokens:
    def __init__(self, **kwargs: str) -> None:
        self.__dict__.update(kwargs)

    intake: str
    source: str
    lead: str
    other_body: str
    supervisor: str
    operator: str
    admin: str


@pytest_asyncio.fixture(scope="module")
async def tokens(store: EventStore) -> Tokens:
    source = unique("audit-backoffice")
    return Tokens(
        intake=await token(store, "intake", label=source), source=source,
        lead=await token(store, "body", "UBND_TINH", label="chuyên viên UBND tỉnh"),
        other_body=await token(store, "body", "SO_TAI_NGUYEN", label="chuyên viên Sở TN&MT"),
        supervisor=await token(store, "supervisor", label="giám sát viên Ban Dân vận"),
        operator=await token(store, "operator", label="vận hành"), admin=await token(store, "admin", label="quản trị"),
    )


async def open_denunciation(api: Api, tokens: Tokens) -> str:
    body = petition(tokens.source, kind="denunciation", receiving_body="UBND_TINH",
                    petitioner={"name": SECRET_NAME, "address": "Số 3 phố Vắng", "phone": SECRET_PHONE})
    opened = await api.post("/v1/petitions", tokens.intake, json=body)
    assert opened.status_code == 201, opened.text
    return str(opened.json()["case_id"])


async def reads_of(api: Api, tok: str, case_id: str) -> dict[str, Any]:
    response = await api.get(f"/v1/cases/{case_id}/reads", tok)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def identity_reads(store: EventStore, case_id: str) -> list[dict[str, Any]]:
    rows = await store.pool.fetch("SELECT * FROM identity_reads WHERE case_id = $1 ORDER BY id", case_id)
    return [dict(r) for r in rows]


async def test_every_read_of_a_denunciation_and_its_history_is_recorded_with_the_reader(
    api: Api, tokens: Tokens, store: EventStore
) -> None:
    case_id = await open_denunciation(api, tokens)
    assert (await api.get(f"/v1/cases/{case_id}", tokens.supervisor)).status_code == 200
    assert (await api.get(f"/v1/cases/{case_id}/history", tokens.lead)).status_code == 200
    assert (await api.get(f"/v1/cases/{case_id}/history", tokens.operator,
                          params={"include": "process"})).status_code == 200
    assert (await api.get(f"/v1/cases/{case_id}", tokens.intake)).status_code == 200
    # Refused attempts and list rows are not reads of the case.
    assert (await api.get(f"/v1/cases/{case_id}", tokens.other_body)).status_code == 403
    listed = await api.get("/v1/cases", tokens.supervisor, params={"kind": "denunciation", "limit": 200})
    assert listed.status_code == 200 and SECRET_NAME not in listed.text

    answer = await reads_of(api, tokens.supervisor, case_id)
    seen = [(r["reader"], r["role"], r["body"], r["what"]) for r in answer["reads"]]
    assert seen == [
        (tokens.source, "intake", None, "case"),
        ("vận hành", "operator", None, "history+process"),
        ("chuyên viên UBND tỉnh", "body", "UBND_TINH", "history"),
        ("giám sát viên Ban Dân vận", "supervisor", None, "case"),
    ]  # newest first
    assert all(r["token_id"] and len(r["token_id"]) == 12 for r in answer["reads"])
    assert answer["next_before"] is None and answer["identity_reads"] == []
    # The admin reads the audit too, and reading the audit is not itself a read of the case.
    assert len((await reads_of(api, tokens.admin, case_id))["reads"]) == 4

    paged = (await api.get(f"/v1/cases/{case_id}/reads", tokens.supervisor, params={"limit": 3})).json()
    rest = (await api.get(f"/v1/cases/{case_id}/reads", tokens.supervisor,
                          params={"limit": 3, "before": paged["next_before"]})).json()
    assert [r["id"] for r in paged["reads"] + rest["reads"]] == [r["id"] for r in answer["reads"]]


async def test_reads_of_other_kinds_of_case_are_not_recorded(api: Api, tokens: Tokens, store: EventStore) -> None:
    case_id = await seed_case(store, kind="complaint", lead_body="UBND_TINH")
    assert (await api.get(f"/v1/cases/{case_id}", tokens.supervisor)).status_code == 200
    assert (await api.get(f"/v1/cases/{case_id}/history", tokens.lead)).status_code == 200
    assert (await reads_of(api, tokens.supervisor, case_id))["reads"] == []
    assert await store.pool.fetchval("SELECT count(*) FROM case_reads WHERE case_id = $1", case_id) == 0


async def test_the_lead_body_and_a_supervisor_read_the_identity_and_every_read_is_recorded_with_its_purpose(
    api: Api, tokens: Tokens, store: EventStore
) -> None:
    case_id = await open_denunciation(api, tokens)
    response = await api.get(f"/v1/cases/{case_id}/petitioner", tokens.lead,
                             params={"purpose": "Thông báo thụ lý tố cáo cho người tố cáo"})
    assert response.status_code == 200, response.text
    identity = response.json()
    assert (identity["name"], identity["phone"], identity["address"]) == (SECRET_NAME, SECRET_PHONE, "Số 3 phố Vắng")
    assert identity["ref"].startswith("sealed-") and identity["recorded"] is True
    assert response.headers["Cache-Control"] == "no-store"
    by_supervisor = await api.get(f"/v1/cases/{case_id}/petitioner", tokens.supervisor,
                                  params={"purpose": "Kiểm tra việc bảo vệ người tố cáo"})
    assert by_supervisor.status_code == 200 and by_supervisor.json()["name"] == SECRET_NAME

    rows = await identity_reads(store, case_id)
    assert [(r["reader"], r["role"], r["body"], r["purpose"]) for r in rows] == [
        ("chuyên viên UBND tỉnh", "body", "UBND_TINH", "Thông báo thụ lý tố cáo cho người tố cáo"),
        ("giám sát viên Ban Dân vận", "supervisor", None, "Kiểm tra việc bảo vệ người tố cáo"),
    ]
    assert all(r["ref"] == identity["ref"] and len(r["token_id"]) == 12 for r in rows)
    listed = (await reads_of(api, tokens.supervisor, case_id))["identity_reads"]
    assert [(r["role"], r["purpose"]) for r in listed] == [
        ("supervisor", "Kiểm tra việc bảo vệ người tố cáo"), ("body", "Thông báo thụ lý tố cáo cho người tố cáo"),
    ]
    assert "ref" not in listed[0]
    # Nothing of the identity is in the case, its history or its audit.
    for path in (f"/v1/cases/{case_id}", f"/v1/cases/{case_id}/history", f"/v1/cases/{case_id}/reads"):
        text = (await api.get(path, tokens.supervisor)).text
        assert SECRET_NAME not in text and SECRET_PHONE not in text


async def test_another_body_a_coordinating_body_and_other_roles_get_403_and_nothing_is_revealed(
    api: Api, tokens: Tokens, store: EventStore
) -> None:
    # A denunciation led by UBND_TINH that SO_TAI_NGUYEN coordinates: it reads the case, not the denouncer.
    vault: IdentityVault = api.app.state.vault
    case_id = unique("pet-sealed")
    sealed = await vault.seal(case_id, tokens.source, unique("ref"), Petitioner(name=SECRET_NAME, phone=SECRET_PHONE))
    await seed_case(store, case_id=case_id, kind="denunciation", lead_body="UBND_TINH", bodies=["SO_TAI_NGUYEN"],
                    summary={"petitioner_ref": sealed.ref})
    stranger = await token(store, "body", unique("BODY"), label="một cơ quan khác")
    params = {"purpose": "Muốn biết ai tố cáo"}
    assert (await api.get(f"/v1/cases/{case_id}", tokens.other_body)).status_code == 200  # it may read the case
    for tok in (tokens.other_body, stranger, tokens.operator, tokens.admin, tokens.intake):
        response = await api.get(f"/v1/cases/{case_id}/petitioner", tok, params=params)
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "forbidden"
        assert sealed.ref is not None
        for private in (SECRET_NAME, SECRET_PHONE, sealed.ref):
            assert private not in response.text
    assert await identity_reads(store, case_id) == []
    cleared = await api.get(f"/v1/cases/{case_id}/petitioner", tokens.lead, params=params)
    assert cleared.status_code == 200 and cleared.json()["name"] == SECRET_NAME
    assert len(await identity_reads(store, case_id)) == 1


async def test_the_purpose_is_required_and_a_case_that_keeps_no_sealed_identity_answers_404(
    api: Api, tokens: Tokens, store: EventStore
) -> None:
    case_id = await open_denunciation(api, tokens)
    missing = await api.get(f"/v1/cases/{case_id}/petitioner", tokens.supervisor)
    assert missing.status_code == 422 and missing.json()["error"]["fields"][0]["field"] == "purpose"
    short = await api.get(f"/v1/cases/{case_id}/petitioner", tokens.supervisor, params={"purpose": "x"})
    assert short.status_code == 422 and SECRET_NAME not in short.text
    assert await identity_reads(store, case_id) == []
    complaint = await seed_case(store, kind="complaint", lead_body="UBND_TINH")
    answer = await api.get(f"/v1/cases/{complaint}/petitioner", tokens.supervisor, params={"purpose": "Kiểm tra"})
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_sealed"
    unknown = await api.get(f"/v1/cases/{unique('nope')}/petitioner", tokens.supervisor, params={"purpose": "Kiểm tra"})
    assert unknown.status_code == 404


async def test_the_audit_is_for_supervisors_and_admins_only(api: Api, tokens: Tokens) -> None:
    case_id = await open_denunciation(api, tokens)
    for tok in (tokens.lead, tokens.operator, tokens.intake):
        response = await api.get(f"/v1/cases/{case_id}/reads", tok)
        assert response.status_code == 403, response.text
    assert (await api.get(f"/v1/cases/{unique('nope')}/reads", tokens.supervisor)).status_code == 404
