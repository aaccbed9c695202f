"""Signing in and out of the console, CSRF, roles and body scoping: the API's token rules, as pages."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlsplit

import pytest

from api.tokens import revoke_token
from eventstore import EventStore

from ..api.support import Api, seed_case, token, unique
from .support import Tokens, csrf_of, person, signed_in, text_of

PAGES = ["/console/cases", "/console/cases/some-case", "/console/plan", "/console/reports",
         "/console/reports/2026/csv", "/console/cases?kind=complaint&overdue=true"]


@pytest.mark.parametrize("path", PAGES)
async def test_a_visitor_without_a_session_is_sent_to_sign_in_and_comes_back_after(
    api: Api, tokens: Tokens, path: str
) -> None:
    async with person(api.app) as visitor:
        response = await visitor.get(path)
        assert response.status_code == 303
        target = urlsplit(response.headers["location"])
        assert target.path == "/console/login"
        assert parse_qs(target.query)["next"] == [path]

        form = await visitor.get(response.headers["location"])
        assert form.status_code == 200 and 'name="next" value="' in form.text
        assert "Hãy đăng nhập để tiếp tục." in form.text
        answer = await visitor.post_form("/console/login", {"csrf": csrf_of(form.text), "token": tokens.supervisor,
                                                            "next": path})
        assert answer.status_code == 303 and answer.headers["location"] == path


async def test_the_console_root_leads_to_the_case_list(api: Api) -> None:
    async with person(api.app) as visitor:
        bare = await visitor.get("/console")
        assert bare.status_code in (307, 308) and bare.headers["location"].endswith("/console/")
        root = await visitor.get("/console/")
        assert root.status_code == 303 and root.headers["location"] == "/console/cases"


async def test_signing_in_sets_an_httponly_strict_session_cookie_and_signing_out_forgets_it(
    api: Api, tokens: Tokens
) -> None:
    async with person(api.app) as user:
        answer = await user.sign_in(tokens.supervisor)
        assert answer.headers["location"] == "/console/cases"
        cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("dv_session="))
        attributes = {part.strip().lower() for part in cookie.split(";")}
        assert {"httponly", "samesite=strict", "path=/console"} <= attributes
        assert tokens.supervisor not in answer.headers["location"]  # never in a URL

        page = await user.page("/console/cases")
        assert "giám sát viên Ban Dân vận" in page.text and 'action="/console/logout"' in page.text

        # Signing out is a POST with the session's CSRF token; without it, or with another, it is refused.
        assert (await user.post_form("/console/logout", {})).status_code == 403
        assert (await user.post_form("/console/logout", {"csrf": "0" * 64})).status_code == 403
        assert (await user.get("/console/cases")).status_code == 200
        out = await user.post_form("/console/logout", {"csrf": csrf_of(page.text)})
        assert out.status_code == 303 and out.headers["location"] == "/console/login?out=1"
        assert any(c.startswith("dv_session=") and "max-age=0" in c.lower() for c in out.headers.get_list("set-cookie"))
        assert (await user.get("/console/cases")).status_code == 303
        assert "Bạn đã đăng xuất." in (await user.get("/console/login?out=1")).text


async def test_a_wrong_token_or_a_form_without_its_csrf_token_signs_nobody_in(api: Api, tokens: Tokens) -> None:
    async with person(api.app) as user:
        form = await user.get("/console/login")
        csrf = csrf_of(form.text)
        wrong = await user.post_form("/console/login", {"csrf": csrf, "token": "dv_" + "x" * 43})
        assert wrong.status_code == 401 and "Mã truy cập không đúng hoặc đã bị thu hồi." in wrong.text
        empty = await user.post_form("/console/login", {"csrf": csrf, "token": ""})
        assert empty.status_code == 422
        forged = await user.post_form("/console/login", {"csrf": "f" * 64, "token": tokens.supervisor})
        assert forged.status_code == 403 and "Biểu mẫu đăng nhập đã hết hạn" in forged.text
        missing = await user.post_form("/console/login", {"token": tokens.supervisor})
        assert missing.status_code == 403
        for answer in (wrong, empty, forged, missing):
            assert not any(c.startswith("dv_session=") for c in answer.headers.get_list("set-cookie"))
        assert (await user.get("/console/cases")).status_code == 303
        # A form posted as JSON is not a form of the console.
        as_json = await user.http.post("/console/login", json={"csrf": csrf, "token": tokens.supervisor})
        assert as_json.status_code == 415


async def test_a_revoked_token_ends_the_session(api: Api, store: EventStore) -> None:
    tok = await token(store, "supervisor", label="sắp bị thu hồi")
    async with signed_in(api.app, tok) as user:
        assert (await user.get("/console/cases")).status_code == 200
        assert await revoke_token(store.pool, tok)
        await asyncio.sleep(0.6)  # the app's token cache keeps a lookup 0.5 s
        ended = await user.get("/console/cases")
        assert ended.status_code == 303 and "ended=1" in ended.headers["location"]
        assert any(c.startswith("dv_session=") and "max-age=0" in c.lower()
                   for c in ended.headers.get_list("set-cookie"))
        assert "Phiên đăng nhập không còn hiệu lực" in (await user.get(ended.headers["location"])).text


async def test_an_intake_system_may_sign_in_but_opens_no_page(api: Api, tokens: Tokens, store: EventStore) -> None:
    case_id = await seed_case(store, source=tokens.source, lead_body="UBND_TINH")
    async with signed_in(api.app, tokens.intake) as system:
        for path in ("/console/cases", f"/console/cases/{case_id}", "/console/plan", "/console/reports"):
            response = await system.get(path)
            assert response.status_code == 403, path
            assert response.headers["content-type"].startswith("text/html")
            text = text_of(response.text)
            assert "Không có quyền truy cập" in text
            assert "Vai trò “intake” không được mở trang này" in text


async def test_a_body_reads_its_own_cases_only(api: Api, tokens: Tokens, store: EventStore) -> None:
    district = unique("Huyện Thanh Hà")
    own = await seed_case(store, lead_body="UBND_TINH", district=district, title="Hồ sơ của UBND tỉnh")
    coordinated = await seed_case(store, lead_body="SO_TAI_NGUYEN", bodies=["UBND_TINH"], district=district,
                                  title="Hồ sơ UBND tỉnh phối hợp")
    foreign = await seed_case(store, lead_body="SO_TAI_NGUYEN", district=district, title="Hồ sơ của Sở")
    async with signed_in(api.app, tokens.lead) as lead:
        listed = await lead.page("/console/cases", params={"district": district})
        assert own in listed.text and coordinated in listed.text and foreign not in listed.text
        assert 'id="count-total">2<' in listed.text
        assert 'name="body"' not in listed.text  # the body filter is the token's own
        assert (await lead.get(f"/console/cases/{own}")).status_code == 200
        assert (await lead.get(f"/console/cases/{coordinated}")).status_code == 200
        refused = await lead.get(f"/console/cases/{foreign}")
        assert refused.status_code == 403 and "Hồ sơ của Sở" not in refused.text
        assert "Mã truy cập của bạn không được xem nội dung này." in refused.text
        other = await lead.get("/console/cases", params={"body": "SO_TAI_NGUYEN", "district": district})
        assert other.status_code == 200 and foreign not in other.text and coordinated in other.text
    async with signed_in(api.app, tokens.supervisor) as supervisor:
        everything = await supervisor.page("/console/cases", params={"district": district})
        assert all(case in everything.text for case in (own, coordinated, foreign))
        assert (await supervisor.get(f"/console/cases/{foreign}")).status_code == 200


async def test_an_unknown_case_or_page_is_an_html_404_and_the_api_keeps_its_json_errors(
    api: Api, tokens: Tokens
) -> None:
    async with signed_in(api.app, tokens.supervisor) as user:
        missing = await user.get(f"/console/cases/{unique('no-such-case')}")
        assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
        assert "Không tìm thấy" in missing.text
        nowhere = await user.get("/console/no-such-page")
        assert nowhere.status_code == 404 and nowhere.headers["content-type"].startswith("text/html")
    # The API's answers are untouched by the console.
    unauthorized = await api.get("/v1/cases")
    assert unauthorized.status_code == 401 and unauthorized.json()["error"]["code"] == "unauthorized"
    assert "/console" not in str(api.app.openapi()["paths"])


async def test_every_page_carries_security_headers_and_is_not_cached(api: Api, tokens: Tokens) -> None:
    async with signed_in(api.app, tokens.supervisor) as user:
        for path in ("/console/login", "/console/cases", "/console/plan", "/console/reports"):
            response = await user.page(path)
            csp = response.headers["content-security-policy"]
            assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "script-src" not in csp
            assert response.headers["x-frame-options"] == "DENY"
            assert response.headers["cache-control"] == "no-store"
            assert "<script" not in response.text.lower()
        css = await user.get("/console/static/console.css")
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


async def test_after_signing_in_the_browser_goes_only_to_a_page_of_the_console(api: Api, tokens: Tokens) -> None:
    for hostile in ("https://evil.example/console/cases", "//evil.example/x", "/console/../v1/tokens",
                    "/console/login", "/elsewhere", "/console/\\evil", "/console/cases\r\nSet-Cookie: x=1"):
        async with person(api.app) as user:
            answer = await user.sign_in(tokens.supervisor, next_path=hostile)
            assert answer.headers["location"] == "/console/cases", hostile
