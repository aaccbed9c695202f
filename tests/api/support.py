"""Helpers for the API tests: run an app in-process, seed cases, issue tokens."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI

from api.tokens import issue_token
from eventstore import CaseRow, EventStore, NewEvent


@dataclass
class Api:
    """A running app and an HTTP client talking to it in-process."""

    app: FastAPI
    http: httpx.AsyncClient

    async def get(self, url: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        return await self.http.get(url, headers=auth(token), **kwargs)

    async def post(self, url: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {**auth(token), **kwargs.pop("headers", {})}
        return await self.http.post(url, headers=headers, **kwargs)


def auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


@asynccontextmanager
async def running(app: FastAPI, *, raise_app_exceptions: bool = True) -> AsyncIterator[Api]:
    """Run the app's lifespan (startup and shutdown) around an httpx client bound to it."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
        async with httpx.AsyncClient(transport=transport, base_url="http://danvan.test") as http:
            yield Api(app=app, http=http)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def unique_body(prefix: str = "BODY") -> str:
    """A body code of the test's own (the `body` filter takes body codes only: `A-Z`, `0-9`, `_`)."""
    return f"{prefix}_{uuid.uuid4().hex[:10].upper()}"


async def seed_case(
    store: EventStore,
    *,
    case_id: str | None = None,
    kind: str = "complaint",
    status: str = "received",
    events: int = 1,
    **row: Any,
) -> str:
    """A case with `events` events in its stream and its `cases` row; returns its id."""
    case_id = case_id or unique("case")
    now = datetime.now(UTC)
    new = [
        NewEvent(
            event_id=uuid.uuid4(),
            type=f"TestEvent{i}",
            occurred_at=now,
            actor="tester",
            reason="seeded by a test",
            legal_basis="Luật Khiếu nại 2011, Điều 28" if i == 1 else None,
            data={"n": i, "note": "ghi chú"},
        )
        for i in range(1, events + 1)
    ]
    await store.append(case_id, 0, new, CaseRow(kind=kind, status=status, **row))
    return case_id


async def token(store: EventStore, role: str, body_id: str | None = None, label: str | None = None) -> str:
    return await issue_token(store.pool, role, body_id, label)


def petition(source: str, kind: str = "complaint", **overrides: Any) -> dict[str, Any]:
    """A valid `POST /v1/petitions` body."""
    body: dict[str, Any] = {
        "source": source,
        "external_ref": unique("ref"),
        "kind": kind,
        "channel": "post",
        "received_at": datetime.now(UTC).isoformat(),
        "petitioner": {"name": "Nguyễn Thị Lan", "address": "Xã Nam Hồng, huyện Nam Sách"},
        "subject": "Khiếu nại về bồi thường đất đai",
        "content": "Bà Lan khiếu nại mức bồi thường khi thu hồi đất nông nghiệp.",
        "district": "Nam Sách",
        "commune": "Nam Hồng",
    }
    body.update(overrides)
    return body


def small_plan(plan_id: str, term_start: str = "2026-01-01", term_end: str = "2030-12-31") -> str:
    """A two-task plan document in YAML, with bodies in force today."""
    return f"""
id: {plan_id}
version: "1"
title_vi: "Kế hoạch công tác dân vận thử nghiệm"
title_en: "A test plan"
issuer: BTGDV_TU
signer: {{name: "Nguyễn Văn A", position_vi: "Trưởng ban", position_en: "Head"}}
term_start: {term_start}
term_end: {term_end}
source: "test"
tasks:
  - id: "II.1"
    title_vi: "Quán triệt, triển khai Nghị quyết"
    title_en: "Disseminate the resolutions"
    text_vi: "Quán triệt, triển khai Nghị quyết"
    lead: [{{code: UBND_TINH, basis: explicit}}]
    coordinators: [{{code: UBMTTQ_TINH, basis: inferred}}]
    cadence: [semiannual, annual]
standing_duties:
  - id: "III.3"
    title_vi: "Theo dõi, đôn đốc; định kỳ 6 tháng, 1 năm tổng hợp báo cáo"
    title_en: "Monitor, urge and compile the reports"
    text_vi: "Theo dõi, đôn đốc; định kỳ 6 tháng, 1 năm tổng hợp báo cáo"
    lead: [{{code: BTGDV_TU, basis: explicit}}]
    cadence: [continuous_monitoring, semiannual, annual]
"""
