"""Every filter of the list and search endpoints is declared and checked: a bad value is 422 naming the
parameter and the rule, the OpenAPI schema states the rule, and nothing a user sends is spliced into a Temporal
list filter or SQL text (`api.filters`, `danvan.visibility`)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.testing import WorkflowEnvironment

from danvan import visibility
from eventstore import EventStore
from workflows.shared import LEAD_BODY

from ..console.support import signed_in
from .support import Api, seed_case, token, unique


@pytest_asyncio.fixture(scope="module")
async def operator(store: EventStore) -> str:
    return await token(store, "operator", label="trực vận hành")


@pytest_asyncio.fixture(scope="module")
async def supervisor(store: EventStore) -> str:
    return await token(store, "supervisor", label="giám sát bộ lọc")


def refused(response: Any, field: str, rule: str) -> None:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_failed"
    assert {(f["field"], f["rule"]) for f in error["fields"]} == {(field, rule)}, error


async def test_a_backslash_in_the_stalled_filter_is_refused_not_a_broken_temporal_query(
    api: Api, operator: str
) -> None:
    # Spliced into the visibility query, `UBND\` left the literal unterminated: Temporal refused the query and
    # the API answered 503 as if Temporal were down.
    response = await api.get("/v1/ops/stalled", operator, params={"body": "UBND\\"})
    refused(response, "body", "string_pattern_mismatch")


async def test_a_quote_in_the_stalled_filter_is_refused_not_silently_dropped(api: Api, operator: str) -> None:
    # The quote was removed, so `UBND_'TINH` listed the cases of UBND_TINH.
    refused(await api.get("/v1/ops/stalled", operator, params={"body": "UBND_'TINH"}), "body",
            "string_pattern_mismatch")
    refused(await api.get("/v1/ops/stalled", operator, params={"kind": "complaint'"}), "kind", "enum")


CASE_LIST_CASES = [
    ({"kind": "khieu_nai"}, "kind", "enum"),
    ({"kind": "complaint\\"}, "kind", "enum"),
    ({"status": "Received"}, "status", "string_pattern_mismatch"),
    ({"status": "received'--"}, "status", "string_pattern_mismatch"),
    ({"status": "a" * 51}, "status", "string_too_long"),
    ({"body": "ubnd_tinh"}, "body", "string_pattern_mismatch"),
    ({"body": "UBND_TINH\\"}, "body", "string_pattern_mismatch"),
    ({"body": "U" * 65}, "body", "string_too_long"),
    ({"district": "Nam\x00Sách"}, "district", "text_nul"),  # refused at the edge (`api.limits`),
    ({"district": "Nam\nSách"}, "district", "string_pattern_mismatch"),
    ({"district": "x" * 101}, "district", "string_too_long"),
    ({"overdue": "perhaps"}, "overdue", "bool_parsing"),
    ({"received_from": "2026-02-30"}, "received_from", "date_from_datetime_parsing"),
    ({"received_from": "1899-12-31"}, "received_from", "date_range"),
    ({"received_to": "2101-01-01"}, "received_to", "date_range"),
    ({"received_from": "2026-03-01", "received_to": "2026-02-28"}, "received_to", "date_range"),
    ({"stalled": "sometimes"}, "stalled", "bool_parsing"),
]


@pytest.mark.parametrize("path", ["/v1/cases", "/v1/cases/counts"])
@pytest.mark.parametrize("params, field, rule", CASE_LIST_CASES)
async def test_each_case_list_filter_refuses_a_bad_value_naming_it_and_its_rule(
    api: Api, supervisor: str, path: str, params: dict[str, str], field: str, rule: str
) -> None:
    refused(await api.get(path, supervisor, params=params), field, rule)


@pytest.mark.parametrize("params, field, rule", [
    ({"limit": "0"}, "limit", "greater_than_equal"),
    ({"limit": "201"}, "limit", "less_than_equal"),
    ({"limit": "ten"}, "limit", "int_parsing"),
    ({"cursor": "not-a-cursor"}, "cursor", "cursor_invalid"),
    ({"cursor": "x" * 2001}, "cursor", "string_too_long"),
])
async def test_case_list_paging_is_bounded(api: Api, supervisor: str, params: dict[str, str], field: str,
                                           rule: str) -> None:
    refused(await api.get("/v1/cases", supervisor, params=params), field, rule)


async def test_a_district_with_quotes_backslashes_and_diacritics_matches_exactly_what_it_says(
    api: Api, store: EventStore, supervisor: str
) -> None:
    tag = uuid.uuid4().hex[:8]
    districts = [f"Nam Sách {tag}", f"O'Brien {tag}", f'Say "hi" {tag}', f"a\\b {tag}", f"100% {tag}",
                 f"a_b {tag}", f"a%b {tag}"]
    ids = {d: await seed_case(store, district=d) for d in districts}
    for d in districts:
        page = await api.get("/v1/cases", supervisor, params={"district": d})
        assert page.status_code == 200, page.text
        assert [c["case_id"] for c in page.json()["items"]] == [ids[d]], d
        counts = await api.get("/v1/cases/counts", supervisor, params={"district": d})
        assert counts.json()["total"] == 1, d
    # `%` and `_` are not patterns: `a_b` does not match `a%b`, nor `a%b` something else.
    assert (await api.get("/v1/cases", supervisor, params={"district": f"a% {tag}"})).json()["items"] == []


@pytest.mark.parametrize("params, field, rule", [
    ({"kind": "bogus"}, "kind", "enum"),
    ({"body": "UBND TINH"}, "body", "string_pattern_mismatch"),
    ({"body": 'UBND"'}, "body", "string_pattern_mismatch"),
    ({"reason": "bored"}, "reason", "literal_error"),
    ({"min_attempts": "1"}, "min_attempts", "greater_than_equal"),
    ({"min_attempts": "101"}, "min_attempts", "less_than_equal"),
    ({"idle_hours": "0"}, "idle_hours", "greater_than"),
    ({"idle_hours": "nan"}, "idle_hours", "finite_number"),
])
async def test_each_stalled_filter_refuses_a_bad_value(api: Api, operator: str, params: dict[str, str],
                                                       field: str, rule: str) -> None:
    response = await api.get("/v1/ops/stalled", operator, params=params)
    assert response.status_code == 422, response.text
    assert (field, rule) in {(f["field"], f["rule"]) for f in response.json()["error"]["fields"]}


async def test_the_bulk_retry_filters_are_checked(api: Api, operator: str) -> None:
    reason = "Thử lại các hồ sơ bị kẹt sau sự cố"
    for body, field, rule in [({"kind": "bogus"}, "kind", "enum"),
                              ({"body": "UBND\\"}, "body", "string_pattern_mismatch")]:
        response = await api.post("/v1/ops/retry", operator, json={"reason": reason, "dry_run": True, **body})
        refused(response, field, rule)


@pytest.mark.parametrize("url, field, rule", [
    ("/v1/reports/26-H1", "period", "string_pattern_mismatch"),
    ("/v1/reports/2026-H3", "period", "string_pattern_mismatch"),
    ("/v1/reports/2026?plan=a%20b", "plan", "string_pattern_mismatch"),
    ("/v1/reports/2026?plan=x%27", "plan", "string_pattern_mismatch"),
    ("/v1/reports/2026?as_of=2026-06-30T17:00", "as_of", "timezone_aware"),
    ("/v1/reports/2026?as_of=1800-01-01T00:00:00%2B07:00", "as_of", "date_range"),
    ("/v1/reports/2026?format=xml", "format", "literal_error"),
])
async def test_the_report_parameters_are_checked(api: Api, supervisor: str, url: str, field: str,
                                                 rule: str) -> None:
    refused(await api.get(url, supervisor), field, rule)


async def test_the_openapi_schema_states_each_filters_rule(api: Api) -> None:
    schema = (await api.http.get("/openapi.json")).json()

    def parameters(path: str, method: str = "get") -> dict[str, dict[str, Any]]:
        out = {}
        for p in schema["paths"][path][method]["parameters"]:
            s = p["schema"]
            out[p["name"]] = s["anyOf"][0] if "anyOf" in s else s
        return out

    def resolve(s: dict[str, Any]) -> dict[str, Any]:
        ref = s.get("$ref")
        return schema["components"]["schemas"][ref.rsplit("/", 1)[1]] if ref else s

    for path in ("/v1/cases", "/v1/cases/counts"):
        params = parameters(path)
        assert "plan_task" in resolve(params["kind"])["enum"] and "complaint" in resolve(params["kind"])["enum"]
        assert params["status"]["pattern"] and params["status"]["maxLength"] == 50
        assert params["body"]["pattern"] and params["body"]["maxLength"] == 64
        assert params["district"]["pattern"] and params["district"]["maxLength"] == 100
        assert params["received_from"]["format"] == "date"
    assert parameters("/v1/cases")["limit"] == {"type": "integer", "maximum": 200, "minimum": 1, "default": 50,
                                                "title": "Limit"}
    stalled = parameters("/v1/ops/stalled")
    assert resolve(stalled["kind"])["enum"] and stalled["body"]["pattern"]
    report = parameters("/v1/reports/{period}")
    assert report["period"]["pattern"] and report["plan"]["pattern"]
    key = parameters("/v1/cases/{case_id}/commands", "post")["idempotency-key"]
    assert key["pattern"] and key["maxLength"] == 200


async def test_the_console_refuses_bad_filters_with_422(api: Api, supervisor: str) -> None:
    async with signed_in(api.app, supervisor) as who:
        for url in ("/console/cases?body=UBND%5C", "/console/cases?kind=bogus", "/console/stalled?body=UBND%27",
                    "/console/stalled?kind=bogus", "/console/reports?period=2026-H9",
                    "/console/reports?plan=a%5Cb", "/console/reports?as_of=1800-01-01T00:00"):
            page = await who.get(url)
            assert page.status_code == 422, (url, page.text[:300])


# -- the visibility query builder against the real dev server ------------------------------------------------


VALUES = ["UBND_TINH", "Nam Sách", "Ủy ban MTTQ", "a'b", 'a"b', "a\\b", "a\\", "a%b", "a_b", "100%", "x\\'y"]


async def listed(client: Client, query: str, expected: int, tries: int = 40) -> list[str]:
    """Workflow ids that the query lists, once visibility has caught up with `expected` of them."""
    found: list[str] = []
    for _ in range(tries):
        found = [w.id async for w in client.list_workflows(query)]
        if len(found) >= expected:
            break
        await asyncio.sleep(0.25)
    return found


async def test_every_value_is_refused_by_the_builder_or_matches_exactly_what_it_says(
    temporal_env: WorkflowEnvironment,
) -> None:
    client = temporal_env.client
    tag = unique("vis")
    queue = f"nobody-{tag}"  # no worker: the workflows only exist, with their search attributes
    handles = {}
    for i, value in enumerate(VALUES):
        handles[value] = await client.start_workflow(
            "NoSuchWorkflow", id=f"{tag}-{i}", task_queue=queue,
            search_attributes=TypedSearchAttributes([SearchAttributePair(LEAD_BODY, value)]))
    try:
        everyone = await listed(client, visibility.query(WorkflowType="NoSuchWorkflow") + " AND "
                                + f"WorkflowId STARTS_WITH '{tag}'", len(VALUES))
        assert len(everyone) == len(VALUES)
        accepted = []
        for value in VALUES:
            try:
                query = visibility.query(LeadBody=value)
            except visibility.UnsafeValue:
                assert any(ch in value for ch in "'\"\\"), value
                continue
            accepted.append(value)
            found = await listed(client, f"{query} AND WorkflowId STARTS_WITH '{tag}'", 1)
            assert found == [handles[value].id], (value, query, found)
        assert accepted == ["UBND_TINH", "Nam Sách", "Ủy ban MTTQ", "a%b", "a_b", "100%"]
    finally:
        for h in handles.values():
            await h.terminate("test over")


def test_the_builder_names_only_known_attributes_and_statuses() -> None:
    assert visibility.query(ExecutionStatus="Running", CaseKind="complaint", LeadBody=None) == (
        "ExecutionStatus = 'Running' AND CaseKind = 'complaint'")
    for bad in ({"Nope": "x"}, {"ExecutionStatus": "Running' OR 1=1"}, {"LeadBody": ""},
                {"LeadBody": "x" * 201}, {"District": "a\x00b"}, {"District": "a\u0085b"}):
        with pytest.raises(visibility.UnsafeValue):
            visibility.query(**bad)
