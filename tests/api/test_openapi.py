"""The OpenAPI states the rules the server enforces (`api.openapi`), and the command route keeps to them."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_asyncio

from api.app import create_app
from api.command_body import public_types
from api.routes.petitions import KINDS
from danvan.settings import Settings
from domain import plan_tasks as pt
from domain.petitions.commands import INTERNAL
from eventstore import EventStore

from .support import Api, petition, token, unique

DOCUMENT = create_app(Settings.from_env({"DANVAN_FEED_WAIT_MAX": "7"}), "postgresql://unused.invalid/x").openapi()
SCHEMAS = DOCUMENT["components"]["schemas"]


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    return SCHEMAS[node["$ref"].rsplit("/", 1)[1]] if "$ref" in node else node


def test_the_command_body_is_the_discriminated_union_of_every_kinds_commands() -> None:
    body = DOCUMENT["paths"]["/v1/cases/{case_id}/commands"]["post"]["requestBody"]
    union = resolve(body["content"]["application/json"]["schema"])
    mapping = union["discriminator"]["mapping"]
    assert union["discriminator"]["propertyName"] == "type"
    assert set(mapping) == public_types(KINDS["petition"]) | public_types(KINDS["plan_task"])
    assert not (INTERNAL & set(mapping)) and "deadline" not in mapping
    assert sorted(r["$ref"] for r in union["oneOf"]) == sorted(set(mapping.values()))
    for type_, ref in mapping.items():
        for branch in resolve({"$ref": ref}).get("oneOf", [{"$ref": ref}]):
            command = resolve(branch)
            assert command["properties"]["type"]["const"] == type_ and "type" in command["required"]
            assert command["additionalProperties"] is False
    # `close` differs between the kinds: both are in its mapping, the plan task's requiring its approval.
    closes = [resolve(b) for b in resolve({"$ref": mapping["close"]})["oneOf"]]
    assert sorted("approval_no" in c["properties"] for c in closes) == [False, True]
    # `assign` is a petition's command; a plan task's own is internal and not in the union.
    assert "body" in resolve({"$ref": mapping["assign"]})["properties"]
    assert "assign" in pt.INTERNAL


def test_the_rules_of_settings_and_data_are_stated() -> None:
    feed = {p["name"]: p["schema"] for p in DOCUMENT["paths"]["/v1/events"]["get"]["parameters"]}
    assert feed["wait"]["maximum"] == 7.0
    types = next(s for s in feed["type"]["anyOf"] if s.get("type") == "array")
    assert "PetitionReceived" in types["items"]["enum"] and types["maxItems"] == 50
    imported = DOCUMENT["paths"]["/v1/plan/import"]["post"]["requestBody"]["content"]
    assert {m["schema"]["$ref"] for m in imported.values()} == {"#/components/schemas/PlanDocument"}
    token_request = SCHEMAS["TokenRequest"]
    assert token_request["oneOf"][0]["required"] == ["body_id"]


@pytest_asyncio.fixture(scope="module")
async def admin(store: EventStore) -> str:
    return await token(store, "admin", label=unique("openapi-admin"))


@pytest.mark.parametrize("command", [
    {"type": "acknowledge", "body": "UBND_TINH"},  # a plan task's, valid there
    {"type": "submit_report", "period": "2026-H1"},  # a plan task's, invalid there too
])
async def test_a_command_of_another_kind_is_422_on_type(api: Api, admin: str, command: dict[str, Any]) -> None:
    opened = await api.post("/v1/petitions", admin, json=petition(unique("openapi")))
    assert opened.status_code == 201, opened.text
    response = await api.post(f"/v1/cases/{opened.json()['case_id']}/commands", admin, json=command)
    assert response.status_code == 422, response.text
    [field] = response.json()["error"]["fields"]
    assert (field["field"], field["rule"]) == ("type", "command.not_for_case_kind")
    assert "complaint" in field["message"] and "accept" in field["message"]


async def test_a_command_with_a_wrongly_typed_field_is_422_naming_it(api: Api, admin: str) -> None:
    opened = await api.post("/v1/petitions", admin, json=petition(unique("openapi")))
    case_id = opened.json()["case_id"]
    response = await api.post(f"/v1/cases/{case_id}/commands", admin, json={"type": "classify", "complex": 0})
    assert response.status_code == 422, response.text
    assert [(f["field"], f["rule"]) for f in response.json()["error"]["fields"]] == [("complex", "bool_type")]
    unknown = await api.get("/v1/cases", admin, params={"stauts": "accepted"})
    assert unknown.status_code == 422
    assert [(f["field"], f["rule"]) for f in unknown.json()["error"]["fields"]] == [("stauts", "extra_forbidden")]
