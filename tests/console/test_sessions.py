"""Console sessions kept on the server: the cookie is a random id, not the token; signing out, revoking the token,
idling and the absolute expiry end the session for good; `Secure` behind the configured HTTPS proxy only."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.tokens import revoke_token
from danvan.settings import ConfigError, Settings
from eventstore import EventStore

from ..api.support import Api, running, token
from ..conftest import secret_env
from .support import Tokens, csrf_of, person, signed_in


def session_cookie(answer: httpx.Response) -> str:
    return next(c for c in answer.headers.get_list("set-cookie") if c.startswith("dv_session="))


def cookie_value(cookie: str) -> str:
    return cookie.split(";")[0].partition("=")[2]


async def replay(app: FastAPI, session_id: str, path: str = "/console/cases") -> httpx.Response:
    """A request of another browser carrying a copied cookie."""
    async with person(app) as thief:
        thief.http.cookies.set("dv_session", session_id, domain="danvan.test", path="/console")
        return await thief.get(path)


async def test_the_cookie_is_a_random_session_id_stored_hashed_with_its_token(
    api: Api, tokens: Tokens, store: EventStore
) -> None:
    async with person(api.app) as first, person(api.app) as second:
        ids = [cookie_value(session_cookie(await who.sign_in(tokens.supervisor))) for who in (first, second)]
        assert ids[0] != ids[1] and len(ids[0]) >= 43
        for session_id in ids:
            assert tokens.supervisor not in session_id and session_id not in tokens.supervisor
        rows = await store.pool.fetch(
            "SELECT s.session_hash, t.label FROM console_sessions s JOIN api_tokens t USING (token_hash) "
            "WHERE s.session_hash = ANY($1::text[])", [hashlib.sha256(i.encode()).hexdigest() for i in ids])
        assert sorted(r["label"] for r in rows) == ["giám sát viên Ban Dân vận"] * 2
        assert not await store.pool.fetchval(
            "SELECT count(*) FROM console_sessions WHERE session_hash = ANY($1::text[])", ids)  # never in clear
        # The token itself in the cookie opens nothing.
        answer = await replay(api.app, tokens.supervisor)
        assert answer.status_code == 303 and "ended=1" in answer.headers["location"]


async def test_signing_out_ends_the_session_on_the_server_so_a_replayed_cookie_fails(
    api: Api, tokens: Tokens
) -> None:
    async with signed_in(api.app, tokens.supervisor) as user:
        session_id = user.http.cookies["dv_session"]
        assert (await replay(api.app, session_id)).status_code == 200  # a copy works while the session lives
        page = await user.page("/console/cases")
        out = await user.post_form("/console/logout", {"csrf": csrf_of(page.text)})
        assert out.status_code == 303
    replayed = await replay(api.app, session_id)
    assert replayed.status_code == 303 and "ended=1" in replayed.headers["location"]
    # Another session of the same token is not touched by this one's sign-out.
    async with signed_in(api.app, tokens.supervisor) as other:
        assert (await other.get("/console/cases")).status_code == 200


async def test_revoking_the_token_ends_its_sessions_at_once(api: Api, store: EventStore) -> None:
    tok = await token(store, "supervisor", label="thu hồi ngay")
    async with signed_in(api.app, tok) as user:
        session_id = user.http.cookies["dv_session"]
        assert await revoke_token(store.pool, tok)
        ended = await user.get("/console/cases")  # no cache to wait for: the session is resolved on the server
        assert ended.status_code == 303 and "ended=1" in ended.headers["location"]
    assert await store.pool.fetchval("SELECT ended_at IS NOT NULL FROM console_sessions WHERE session_hash = $1",
                                     hashlib.sha256(session_id.encode()).hexdigest())


@pytest.mark.parametrize("expiry", ["idle", "absolute"])
async def test_a_session_idle_too_long_or_past_its_absolute_expiry_is_over(
    api: Api, tokens: Tokens, store: EventStore, expiry: str
) -> None:
    settings = api.app.state.settings
    async with signed_in(api.app, tokens.supervisor) as user:
        session_hash = hashlib.sha256(user.http.cookies["dv_session"].encode()).hexdigest()
        assert (await user.get("/console/cases")).status_code == 200
        if expiry == "idle":  # last used just over the idle period ago
            await store.pool.execute(
                "UPDATE console_sessions SET last_seen_at = now() - make_interval(secs => $2) "
                "WHERE session_hash = $1", session_hash, settings.session_idle + 5.0)
        else:  # signed in just over the absolute period ago, and in use all along
            await store.pool.execute(
                "UPDATE console_sessions SET created_at = now() - make_interval(secs => $2), "
                "expires_at = now() - interval '1 second' WHERE session_hash = $1",
                session_hash, settings.session_absolute + 1.0)
        ended = await user.get("/console/cases")
        assert ended.status_code == 303 and "ended=1" in ended.headers["location"]


async def test_a_session_in_use_stays_and_its_cookie_lives_no_longer_than_the_absolute_expiry(
    api: Api, tokens: Tokens, store: EventStore
) -> None:
    settings = api.app.state.settings
    async with person(api.app) as user:
        cookie = session_cookie(await user.sign_in(tokens.supervisor))
        assert f"max-age={settings.session_absolute}" in cookie.lower()
        session_hash = hashlib.sha256(cookie_value(cookie).encode()).hexdigest()
        await store.pool.execute("UPDATE console_sessions SET last_seen_at = now() - make_interval(secs => $2) "
                                 "WHERE session_hash = $1", session_hash, settings.session_idle - 30.0)
        assert (await user.get("/console/cases")).status_code == 200  # used within the idle period: still on
        seen = await store.pool.fetchval("SELECT now() - last_seen_at < interval '5 seconds' FROM console_sessions "
                                         "WHERE session_hash = $1", session_hash)
        assert seen  # and the use was recorded


def test_session_settings_are_checked() -> None:
    settings = Settings.from_env({"DANVAN_SESSION_IDLE": "600", "DANVAN_SESSION_ABSOLUTE": "7200",
                                  "DANVAN_TRUSTED_PROXIES": "10.0.0.5, 192.168.1.0/24"})
    assert (settings.session_idle, settings.session_absolute) == (600, 7200)
    assert settings.trusted_proxies == ("10.0.0.5/32", "192.168.1.0/24")
    with pytest.raises(ConfigError, match="DANVAN_SESSION_IDLE=10: must be between 60"):
        Settings.from_env({"DANVAN_SESSION_IDLE": "10"})
    with pytest.raises(ConfigError, match=r"DANVAN_TRUSTED_PROXIES: 'proxy\.example' is not an IP address"):
        Settings.from_env({"DANVAN_TRUSTED_PROXIES": "proxy.example"})


# -- Secure behind a proxy ------------------------------------------------------------------------------------------


@asynccontextmanager
async def console_behind(proxies: str, database_url: str, temporal_env: WorkflowEnvironment, home: Path
                         ) -> AsyncIterator[Api]:
    settings = Settings.from_env({"TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
                                  "DANVAN_TRUSTED_PROXIES": proxies, "DANVAN_HOME": str(home),
                                  **secret_env()})
    async with running(create_app(settings, database_url, temporal_client=temporal_env.client)) as api:
        yield api


async def _sign_in_via(api: Api, tok: str, headers: dict[str, str]) -> str:
    """Sign in as a browser behind the proxy would (the ASGI test client's peer is 127.0.0.1)."""
    form = await api.http.get("/console/login", headers=headers)
    nonce = form.cookies["dv_login"]  # sent back by hand: a Secure cookie does not travel over the test's http
    answer = await api.http.post("/console/login", data={"csrf": csrf_of(form.text), "token": tok},
                                 headers={**headers, "Cookie": f"dv_login={nonce}"})
    assert answer.status_code == 303, answer.text
    return session_cookie(answer)


async def test_the_cookie_is_secure_behind_the_configured_https_proxy_and_not_from_an_untrusted_peer(
    database_url: str, temporal_env: WorkflowEnvironment, tokens: Tokens, tmp_path: Path
) -> None:
    https = {"X-Forwarded-Proto": "https"}
    async with console_behind("127.0.0.1", database_url, temporal_env, tmp_path) as behind:
        trusted = await _sign_in_via(behind, tokens.supervisor, https)
        plain = await _sign_in_via(behind, tokens.supervisor, {"X-Forwarded-Proto": "http"})
    async with console_behind("10.9.8.7", database_url, temporal_env, tmp_path) as elsewhere:
        untrusted = await _sign_in_via(elsewhere, tokens.supervisor, https)

    def attributes(cookie: str) -> set[str]:
        return {part.strip().lower() for part in cookie.split(";")}

    assert {"secure", "httponly", "samesite=strict"} <= attributes(trusted)
    assert "secure" not in attributes(plain)
    assert "secure" not in attributes(untrusted) and "httponly" in attributes(untrusted)
