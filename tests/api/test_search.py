"""Text search over cases (`q`): subject, content and references, whatever the letter case and diacritics, scoped
like every other filter, on real petitions received through the API (the text is indexed when a case's first
event is stored, migration 0011)."""

from __future__ import annotations

import unicodedata
import uuid

import pytest_asyncio

from eventstore import EventStore

from .support import Api, petition, token, unique


class World:
    def __init__(self, source: str, intake: str, supervisor: str, lead: str, other: str) -> None:
        self.source, self.intake, self.supervisor, self.lead, self.other = source, intake, supervisor, lead, other


@pytest_asyncio.fixture(scope="module")
async def world(store: EventStore) -> World:
    source = unique("search")
    return World(source, await token(store, "intake", label=source), await token(store, "supervisor"),
                 await token(store, "body", "UBND_TINH", label="cán bộ UBND tỉnh"),
                 await token(store, "body", "SO_TAI_NGUYEN", label="cán bộ Sở Tài nguyên"))


async def found(api: Api, tok: str, q: str, path: str = "/v1/cases") -> set[str]:
    answer = await api.get(path, tok, params={"q": q, "limit": 200})
    assert answer.status_code == 200, answer.text
    return {item["case_id"] for item in answer.json()["items"]}


async def test_words_are_found_in_subject_content_and_references_whatever_case_and_diacritics(
    api: Api, world: World
) -> None:
    marker = uuid.uuid4().hex[:8]
    cases = {}
    for name, overrides in {
        "land": {"subject": f"Khiếu nại bồi thường đất đai {marker}", "district": "Nam Sách",
                 "content": "Đề nghị xem xét lại giá đất ở thôn Đồng Lạc."},
        "road": {"subject": f"Kiến nghị sửa đường liên xã {marker}", "district": "Kinh Môn",
                 "kind": "recommendation", "content": "Đường xuống cấp, ổ gà 50% mặt đường_"},
        "ref": {"subject": f"Phản ánh tiếng ồn {marker}", "external_ref": f"KN-ĐẶC-BIỆT-{marker}",
                "kind": "recommendation", "content": "Xưởng gỗ hoạt động ban đêm.", "district": "Thanh Miện"},
    }.items():
        body = petition(world.source, receiving_body="UBND_TINH", **overrides)
        opened = await api.post("/v1/petitions", world.intake, json=body)
        assert opened.status_code == 201, opened.text
        cases[name] = opened.json()["case_id"]

    sup = world.supervisor
    assert await found(api, sup, marker) == set(cases.values())
    assert await found(api, sup, f"nam sach {marker}") == {cases["land"]}
    assert await found(api, sup, f"NAM SÁCH {marker}") == {cases["land"]}
    assert await found(api, sup, f"dong lac {marker}") == {cases["land"]}  # the content, đ folded to d
    decomposed = unicodedata.normalize("NFD", f"Đồng Lạc {marker}")
    assert await found(api, sup, decomposed) == {cases["land"]}
    assert await found(api, sup, f"duong lien xa {marker}") == {cases["road"]}
    assert await found(api, sup, f"kn-dac-biet-{marker}") == {cases["ref"]}  # the sender's reference
    assert await found(api, sup, cases["ref"]) == {cases["ref"]}  # the case id
    # Every word must be found; `%` and `_` are characters, not wildcards.
    assert await found(api, sup, f"nam sach kinh {marker}") == set()
    assert await found(api, sup, f"50% {marker}") == {cases["road"]}
    assert await found(api, sup, f"đường_ {marker}") == {cases["road"]}
    assert await found(api, sup, f"5_% {marker}") == set()
    assert await found(api, sup, f"\\ {marker}") == set()

    # Scoped like the list: the receiving body sees its cases, another body none of them.
    assert await found(api, world.lead, marker) == set(cases.values())
    assert await found(api, world.other, marker) == set()
    # The counts count what the search finds.
    counts = await api.get("/v1/cases/counts", sup, params={"q": f"nam sach {marker}"})
    assert counts.status_code == 200 and counts.json()["total"] == 1, counts.text


async def test_the_petitioner_is_not_searchable(api: Api, world: World) -> None:
    marker = uuid.uuid4().hex[:8]
    body = petition(world.source, subject=f"Tố cáo cán bộ {marker}", kind="denunciation",
                    petitioner={"name": f"Người Tố Cáo {marker}", "phone": "0912345678"})
    opened = await api.post("/v1/petitions", world.intake, json=body)
    assert opened.status_code == 201, opened.text
    assert await found(api, world.supervisor, f"to cao {marker}") == {opened.json()["case_id"]}
    assert await found(api, world.supervisor, f"nguoi {marker}") == set()
    assert await found(api, world.supervisor, "0912345678") == set()


async def test_a_bad_search_is_refused_naming_q(api: Api, world: World) -> None:
    for value, rule in (("x" * 201, "string_too_long"), ("a\tb", "string_pattern_mismatch")):
        answer = await api.get("/v1/cases", world.supervisor, params={"q": value})
        assert answer.status_code == 422, answer.text
        assert [(f["field"], f["rule"]) for f in answer.json()["error"]["fields"]] == [("q", rule)]


async def test_the_filtered_list_exports_as_csv_and_xlsx_with_vietnamese_intact(api: Api, world: World) -> None:
    import csv
    import io

    from openpyxl import load_workbook

    marker = uuid.uuid4().hex[:8]
    ids = []
    for subject in (f"Khiếu nại đất đai {marker}", f"=HYPERLINK(\"http://x\") {marker}"):
        opened = await api.post("/v1/petitions", world.intake,
                                json=petition(world.source, subject=subject, receiving_body="UBND_TINH"))
        assert opened.status_code == 201, opened.text
        ids.append(opened.json()["case_id"])
    answer = await api.get("/v1/cases/export", world.supervisor, params={"q": marker, "format": "csv"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    assert answer.content.startswith("\ufeff".encode())
    table = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert table[0][:4] == ["Mã hồ sơ", "Loại", "Trạng thái", "Trích yếu"]
    assert {row[0] for row in table[1:]} == set(ids)
    subjects = {row[3] for row in table[1:]}
    assert f"Khiếu nại đất đai {marker}" in subjects
    assert f"'=HYPERLINK(\"http://x\") {marker}" in subjects  # never a formula in a clerk's spreadsheet

    xlsx = await api.get("/v1/cases/export", world.supervisor, params={"q": marker, "format": "xlsx", "lang": "en"})
    assert xlsx.status_code == 200, xlsx.text
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet is not None
    cells = [[c.value for c in row] for row in sheet.iter_rows()]
    assert cells[0][:2] == ["Case id", "Kind"] and {r[0] for r in cells[1:]} == set(ids)
    # A body exports only what it may read.
    assert (await api.get("/v1/cases/export", world.other, params={"q": marker})).content.decode(
        "utf-8-sig").count("\n") == 1
