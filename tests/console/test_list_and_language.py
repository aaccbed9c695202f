"""The case list (the filters and cursor of `GET /v1/cases`, the counts of `/v1/cases/counts`), the language
switch, and Vietnamese text as it was sent."""

from __future__ import annotations

import re
import unicodedata

from eventstore import EventStore

from ..api.support import Api, seed_case, unique
from .support import Tokens, signed_in, text_of

TITLE = "Đơn khiếu nại về bồi thường đất đai ở xã Nam Sách"


def case_ids(page: str) -> list[str]:
    return re.findall(r'class="case-link"><code>([^<]+)</code>', page)


async def test_the_list_filters_like_the_api_pages_with_its_cursor_and_counts_the_same_cases(
    api: Api, tokens: Tokens, store: EventStore
) -> None:
    district = unique("Kinh Môn")
    complaints = [await seed_case(store, kind="complaint", status="accepted", district=district,
                                  lead_body="UBND_TINH", overdue=i == 0) for i in range(3)]
    denunciation = await seed_case(store, kind="denunciation", status="received", district=district,
                                   lead_body="THANH_TRA_TINH")
    async with signed_in(api.app, tokens.supervisor) as user:
        # Blank fields of the filter form mean "no filter", as the browser sends them.
        everything = await user.page("/console/cases", params={
            "kind": "", "status": "", "body": "", "district": district, "overdue": "", "from_day": "",
            "to_day": "", "q": "", "sort": "-created_at"})
        assert sorted(case_ids(everything.text)) == sorted([*complaints, denunciation])
        assert 'id="count-total">4<' in everything.text and 'id="count-overdue">1<' in everything.text

        only = await user.page("/console/cases", params={"district": district, "kind": "complaint",
                                                         "overdue": "true"})
        assert case_ids(only.text) == [complaints[0]]
        by_body = await user.page("/console/cases", params={"district": district, "body": "THANH_TRA_TINH"})
        assert case_ids(by_body.text) == [denunciation]
        # The stalled filter of the API too (asks Temporal): none of these cases is stuck.
        stuck = await user.page("/console/cases", params={"district": district, "stalled": "true"})
        assert case_ids(stuck.text) == []
        moving = await user.page("/console/cases", params={"district": district, "stalled": "false"})
        assert sorted(case_ids(moving.text)) == sorted([*complaints, denunciation])

        api_list = await api.get("/v1/cases", tokens.supervisor, params={"district": district, "limit": 2})
        first = await user.page("/console/cases", params={"district": district, "limit": "2"})
        assert case_ids(first.text) == [c["case_id"] for c in api_list.json()["items"]]
        next_url = re.search(r'href="([^"]+)" rel="next"', first.text)
        assert next_url
        second = await user.page(next_url.group(1).replace("&amp;", "&"))
        assert len(case_ids(second.text)) == 2 and not set(case_ids(first.text)) & set(case_ids(second.text))
        assert 'rel="next"' not in second.text and "Về trang đầu" in second.text

        counts = (await api.get("/v1/cases/counts", tokens.supervisor, params={"district": district})).json()
        kinds = everything.text.split("Theo loại")[1].split("</table>")[0]
        for group in counts["by_kind"]:
            assert re.search(rf"kind={group['value']}[^>]*>[^<]+</a>\s*</th>\s*<td>{group['count']}</td>", kinds)

        bad_dates = await user.get("/console/cases", params={"from_day": "02/05/2026", "to_day": "01/05/2026"})
        assert bad_dates.status_code == 422 and "received_to" in bad_dates.text
        # Days are typed as a clerk writes them, whatever the browser's language.
        typed = await user.page("/console/cases", params={"district": district, "from_day": "01/01/2020",
                                                          "to_day": "31/12/2099"})
        same = await api.get("/v1/cases", tokens.supervisor, params={
            "district": district, "received_from": "2020-01-01", "received_to": "2099-12-31"})
        assert sorted(case_ids(typed.text)) == sorted(c["case_id"] for c in same.json()["items"])
        assert 'value="01/01/2020"' in typed.text and 'value="31/12/2099"' in typed.text
        iso = await user.get("/console/cases", params={"from_day": "2026-05-02"})
        assert iso.status_code == 422 and "dd/mm/yyyy" in iso.text
        bad_cursor = await user.get("/console/cases", params={"cursor": "not-a-cursor"})
        assert bad_cursor.status_code == 422 and "Dữ liệu không hợp lệ" in bad_cursor.text


async def test_vietnamese_is_the_default_and_english_is_one_switch_away_kept_in_a_cookie(
    api: Api, tokens: Tokens
) -> None:
    async with signed_in(api.app, tokens.supervisor) as user:
        vietnamese = await user.page("/console/cases")
        assert '<html lang="vi">' in vietnamese.text and "Danh sách hồ sơ" in vietnamese.text
        switch = re.search(r'<a class="lang" href="([^"]+)"', vietnamese.text)
        assert switch and "lang=en" in switch.group(1)

        english = await user.page(switch.group(1).replace("&amp;", "&"))
        assert '<html lang="en">' in english.text and ">Cases<" in english.text
        assert "Danh sách hồ sơ" not in english.text
        cookie = next(c for c in english.headers.get_list("set-cookie") if c.startswith("lang="))
        assert cookie.startswith("lang=en;") and "Path=/console" in cookie

        # The choice sticks for the next pages, without the parameter.
        for path in ("/console/plan", "/console/reports"):
            assert '<html lang="en">' in (await user.page(path)).text
        assert "Period reports" in (await user.page("/console/reports")).text
        back = await user.page("/console/cases", params={"lang": "vi"})
        assert '<html lang="vi">' in back.text
        assert '<html lang="vi">' in (await user.page("/console/plan")).text
        # An unknown language is ignored.
        assert '<html lang="vi">' in (await user.page("/console/cases", params={"lang": "fr"})).text
    async with signed_in(api.app, tokens.supervisor) as other:
        login = await other.page("/console/login", params={"lang": "en"})
        assert ">Sign in<" in login.text


async def test_vietnamese_text_round_trips_unchanged_and_nothing_from_a_case_becomes_markup(
    api: Api, tokens: Tokens, store: EventStore
) -> None:
    district = unique("Huyện Nam Sách")
    decomposed = unicodedata.normalize("NFD", TITLE)
    assert decomposed != TITLE
    case_id = await seed_case(store, title=decomposed, district=district, commune="xã An Lâm",
                              lead_body="UBND_TINH")
    hostile = await seed_case(store, title='<script>alert("x")</script> & <b>đậm</b>', district=district,
                              lead_body="UBND_TINH")
    async with signed_in(api.app, tokens.supervisor) as user:
        listed = await user.page("/console/cases", params={"district": unicodedata.normalize("NFD", district)})
        assert listed.headers["content-type"] == "text/html; charset=utf-8"
        assert TITLE.encode("utf-8") in listed.content  # stored and shown in NFC, byte for byte
        assert decomposed.encode("utf-8") not in listed.content
        assert sorted(case_ids(listed.text)) == sorted([case_id, hostile])
        assert "<script>" not in listed.text and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in listed.text
        assert "&lt;b&gt;đậm&lt;/b&gt;" in listed.text

        page = await user.page(f"/console/cases/{case_id}")
        assert TITLE.encode("utf-8") in page.content and "xã An Lâm" in page.text
        assert "ghi chú" in text_of(page.text)  # the events' data, as stored
        assert unicodedata.is_normalized("NFC", page.content.decode("utf-8"))
