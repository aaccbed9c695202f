"""The case list's search box: the words of `GET /v1/cases?q=`, letter case and diacritics aside."""

from __future__ import annotations

import re
import uuid

from ..api.support import Api
from .support import Tokens, open_petition, signed_in, text_of


async def test_the_search_box_finds_a_case_by_words_without_their_diacritics(api: Api, tokens: Tokens) -> None:
    marker = uuid.uuid4().hex[:8]
    case_id = await open_petition(api, tokens, subject=f"Khiếu nại về giải phóng mặt bằng {marker}",
                                  district="Nam Sách")
    async with signed_in(api.app, tokens.supervisor) as user:
        page = await user.page("/console/cases", params={"q": f"giai phong {marker}"})
        assert case_id in page.text and 'value="giai phong ' in page.text
        assert "Tìm kiếm" in text_of(page.text)
        none = await user.page("/console/cases", params={"q": f"cay xanh {marker}"})
        assert case_id not in none.text


async def test_the_list_can_be_sorted_by_due_date_and_keeps_the_order_across_pages(api: Api, tokens: Tokens) -> None:
    for _ in range(2):
        await open_petition(api, tokens)
    async with signed_in(api.app, tokens.supervisor) as user:
        page = await user.page("/console/cases", params={"sort": "due_at", "limit": "1"})
        assert '<option value="due_at" selected>Hạn gần nhất trước</option>' in page.text
        found = re.search(r'<a href="([^"]+)" rel="next">', page.text)
        assert found, "no next page"
        following = found.group(1).replace("&amp;", "&")
        assert "sort=due_at" in following and "cursor=" in following
        assert (await user.get(following)).status_code == 200


async def test_the_filtered_list_downloads_as_csv_and_xlsx_in_the_pages_language(api: Api, tokens: Tokens) -> None:
    marker = uuid.uuid4().hex[:8]
    case_id = await open_petition(api, tokens, subject=f"Kiến nghị về môi trường {marker}")
    async with signed_in(api.app, tokens.supervisor) as user:
        page = await user.page("/console/cases", params={"q": marker})
        found = re.search(r'<a href="([^"]+format=csv)" download>', page.text)
        assert found, "no export link"
        csv_file = await user.get(found.group(1).replace("&amp;", "&"))
        assert csv_file.status_code == 200 and csv_file.headers["content-type"].startswith("text/csv")
        text = csv_file.content.decode("utf-8-sig")
        assert text.startswith("Mã hồ sơ,") and case_id in text and f"Kiến nghị về môi trường {marker}" in text
        xlsx = await user.get(found.group(1).replace("&amp;", "&").replace("format=csv", "format=xlsx"))
        assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
