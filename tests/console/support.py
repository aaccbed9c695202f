"""Helpers of the console tests: a cookie-keeping HTTP client per person, signing in, cases made through the API."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI

from eventstore import EventStore

from ..api.support import Api, petition


@dataclass
class Tokens:
    source: str
    intake: str
    lead: str
    other_body: str
    stranger: str
    supervisor: str
    operator: str
    admin: str


_CSRF = re.compile(r'name="csrf" value="([^"]*)"')


def csrf_for(app: FastAPI, who: Person) -> str:
    """The CSRF token the console gives `who`'s session, made as `api.console.session` makes it: for a role that
    no page shows a form to, so that a refusal is seen to come from the role and not from the token."""
    key = hmac.new(app.state.vault.key, b"danvan console csrf v1", hashlib.sha256).digest()
    session = who.http.cookies.get("dv_session")
    assert session, "not signed in"
    return hmac.new(key, f"session\x1f{session}".encode(), hashlib.sha256).hexdigest()


def csrf_of(page: str) -> str:
    """The CSRF token of the first form of `page` that has one."""
    found = _CSRF.search(page)
    assert found, "the page has no form with a CSRF token"
    return html.unescape(found.group(1))


class Person:
    """Someone at a browser: an HTTP client with its own cookie jar, talking to the app in-process."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.http.get(url, **kwargs)

    async def post_form(self, url: str, fields: dict[str, str]) -> httpx.Response:
        return await self.http.post(url, data=fields)

    async def sign_in(self, tok: str, *, next_path: str | None = None) -> httpx.Response:
        form = await self.get("/console/login")
        assert form.status_code == 200, form.text
        fields = {"csrf": csrf_of(form.text), "token": tok}
        if next_path:
            fields["next"] = next_path
        answer = await self.post_form("/console/login", fields)
        assert answer.status_code == 303, answer.text
        return answer

    async def page(self, url: str, **kwargs: Any) -> httpx.Response:
        """A page that must answer 200."""
        response = await self.get(url, **kwargs)
        assert response.status_code == 200, (response.status_code, response.headers.get("location"), response.text)
        return response


@asynccontextmanager
async def person(app: FastAPI) -> AsyncIterator[Person]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://danvan.test") as http:
        yield Person(http)


@asynccontextmanager
async def signed_in(app: FastAPI, tok: str) -> AsyncIterator[Person]:
    async with person(app) as who:
        await who.sign_in(tok)
        yield who


async def open_petition(api: Api, tokens: Tokens, **overrides: Any) -> str:
    """A petition received through `POST /v1/petitions` (its case runs on the real worker)."""
    body = petition(tokens.source, receiving_body="UBND_TINH", **overrides)
    opened = await api.post("/v1/petitions", tokens.intake, json=body)
    assert opened.status_code == 201, opened.text
    return str(opened.json()["case_id"])


async def command(api: Api, tok: str, case_id: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = await api.post(f"/v1/cases/{case_id}/commands", tok, json=body,
                            headers={"Idempotency-Key": str(uuid.uuid4())})
    assert answer.status_code == 200, (body, answer.text)
    return dict(answer.json())


def text_of(page: str) -> str:
    """A page's text without tags, entities decoded and spaces collapsed, to look for sentences in it."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


async def open_case(api: Api, tokens: Tokens) -> str:
    """A complaint classified and accepted by its lead body (UBND_TINH), running on the real worker."""
    case_id = await open_petition(api, tokens)
    await command(api, tokens.lead, case_id, {"type": "classify", "lead_body": "UBND_TINH"})
    await command(api, tokens.lead, case_id, {"type": "accept", "decision_no": "3/QĐ-UBND"})
    return case_id


STUCK_BODY = {"type": "assign", "body": "UBND_TINH", "officer": "Cán bộ Đinh Thị Lan"}


async def stuck_command(api: Api, tok: str, case_id: str) -> asyncio.Task[httpx.Response]:
    """An `assign` sent in the background: its append fails while the fault is in place, so it waits (until the
    request's bound, when it answers 503 with its outcome unknown)."""
    return asyncio.create_task(api.post(f"/v1/cases/{case_id}/commands", tok, json=STUCK_BODY,
                                        headers={"Idempotency-Key": f"assign-{case_id}"}))


def outcome_unknown(answer: httpx.Response) -> bool:
    """A 503 saying the command was sent and may or may not have been applied (`api.routes.petitions`)."""
    return answer.status_code == 503 and "same Idempotency-Key" in answer.json()["error"]["message"]


def still_waiting(sent: asyncio.Task[httpx.Response]) -> bool:
    """The stuck command has no answer yet, or only the bounded one: its outcome unknown."""
    return not sent.done() or outcome_unknown(sent.result())


async def final_answer(api: Api, tok: str, case_id: str, sent: asyncio.Task[httpx.Response],
                       body: dict[str, Any] | None = None, *, seconds: float = 60) -> httpx.Response:
    """The stuck command's answer once the case can answer: its own, if it came within the request's bound, else
    the answer to sending it again with the same Idempotency-Key, as a client does after such a 503."""
    answer = await asyncio.wait_for(sent, seconds)
    deadline = asyncio.get_running_loop().time() + seconds
    while outcome_unknown(answer) and asyncio.get_running_loop().time() < deadline:
        answer = await api.post(f"/v1/cases/{case_id}/commands", tok, json=body or STUCK_BODY,
                                headers={"Idempotency-Key": f"assign-{case_id}"})
    return answer


async def stream_types(store: EventStore, case_id: str) -> list[str]:
    return [e.type for e in await store.read_stream(case_id)]


async def wait_for_types(store: EventStore, case_id: str, tail: list[str], *, seconds: float = 20) -> list[str]:
    """The case's event types once they end with `tail` (the record of a repair follows its step)."""
    types: list[str] = []
    for _ in range(int(seconds / 0.2)):
        types = await stream_types(store, case_id)
        if types[-len(tail):] == tail:
            break
        await asyncio.sleep(0.2)
    return types
