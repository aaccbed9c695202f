"""A case's files on its console page: listed with their name, kind, type, size and date in Vietnamese, each
opened through the console with the session's access."""

from __future__ import annotations

import re

from eventstore import EventStore

from ..api.support import Api
from .support import Tokens, open_petition, signed_in, text_of

LETTER = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n" + b"0" * 12_400


async def test_the_case_page_lists_its_files_and_opens_them_for_whoever_may_read_it(
        api: Api, tokens: Tokens, store: EventStore) -> None:
    case_id = await open_petition(api, tokens)
    async with signed_in(api.app, tokens.lead) as user:
        empty = await user.page(f"/console/cases/{case_id}")
    assert 'id="no-files"' in empty.text and "Hồ sơ chưa có tài liệu kèm theo." in text_of(empty.text)
    added = await api.post(f"/v1/cases/{case_id}/attachments", tokens.intake, data={"category": "letter"},
                           files={"file": ("Đơn khiếu nại (bản quét).pdf", LETTER, "application/pdf")})
    assert added.status_code == 201, added.text

    async with signed_in(api.app, tokens.lead) as user:
        page = await user.page(f"/console/cases/{case_id}")
        html = page.text
        files = html.split('id="files-title"')[1].split("</section>")[0]
        text = text_of(files)
        for label in ("Tài liệu kèm theo", "Tên tệp", "Loại tài liệu", "Định dạng", "Dung lượng", "Ngày bổ sung",
                      "Đơn khiếu nại (bản quét).pdf", "Đơn", "application/pdf", "12,4 KB"):
            assert label in text, label
        assert re.search(r"\d\d/\d\d/\d{4} \d\d:\d\d", text)  # the day it came, Vietnam time
        link = re.search(r'class="file-link" href="([^"]+)"', files)
        assert link is not None
        opened = await user.get(link.group(1))
        assert opened.status_code == 200 and opened.content == LETTER
        assert opened.headers["content-type"] == "application/pdf"
        assert opened.headers["x-content-type-options"] == "nosniff"
        assert "filename*=UTF-8''%C4%90%C6%A1n" in opened.headers["content-disposition"]
        missing = await user.get(link.group(1)[:-64] + "0" * 64)
        assert missing.status_code == 404 and "Hồ sơ không có tài liệu này." in missing.text

    async with signed_in(api.app, tokens.lead) as user:
        english = await user.page(f"/console/cases/{case_id}", params={"lang": "en"})
    assert "Kind of document" in english.text and "12.4 KB" in english.text

    async with signed_in(api.app, tokens.stranger) as stranger:
        refused = await stranger.get(link.group(1))
    assert refused.status_code == 403 and refused.content != LETTER
