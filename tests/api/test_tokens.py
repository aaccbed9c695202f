"""Tokens: issued by an admin, stored hashed, registered idempotently, scoped by role."""

from __future__ import annotations

import hashlib

import pytest
from pydantic import ValidationError

from api.tokens import (
    Principal,
    authenticate,
    ensure_token,
    hash_token,
    issue_token,
    new_token,
    revoke_token,
)
from eventstore import EventStore

from .support import Api, token, unique


async def test_an_admin_issues_a_token_that_works_for_its_role(api: Api, store: EventStore) -> None:
    admin = await token(store, "admin", label="tokens-admin")
    body_id = "SO_NOI_VU"
    response = await api.post("/v1/tokens", admin, json={"role": "body", "body_id": body_id, "label": "Sở Nội vụ"})
    assert response.status_code == 201, response.text
    issued = response.json()
    assert issued["role"] == "body" and issued["body_id"] == body_id and issued["label"] == "Sở Nội vụ"
    assert issued["token"].startswith("dv_") and len(issued["token"]) > 40
    listed = await api.get("/v1/cases", issued["token"], params={"limit": 1})
    assert listed.status_code == 200
    assert (await api.post("/v1/tokens", issued["token"], json={"role": "admin", "label": "x"})).status_code == 403


async def test_only_the_sha256_of_a_token_is_stored(store: EventStore) -> None:
    tok = await issue_token(store.pool, "supervisor", label=unique("hashed"))
    digest = hashlib.sha256(tok.encode()).hexdigest()
    assert await store.pool.fetchval("SELECT count(*) FROM api_tokens WHERE token_hash = $1", digest) == 1
    assert await store.pool.fetchval("SELECT count(*) FROM api_tokens WHERE token_hash = $1", tok) == 0
    assert hash_token(tok) == digest


async def test_authenticate_knows_active_tokens_only(store: EventStore) -> None:
    label = unique("system")
    tok = await issue_token(store.pool, "intake", label=label)
    principal = await authenticate(store.pool, tok)
    assert principal == Principal(role="intake", body_id=None, label=label, id=hash_token(tok)[:12])
    assert await authenticate(store.pool, new_token()) is None
    assert await authenticate(store.pool, "") is None
    assert await revoke_token(store.pool, tok) is True
    assert await revoke_token(store.pool, tok) is False
    assert await authenticate(store.pool, tok) is None


async def test_ensure_token_is_idempotent_and_never_rescopes(store: EventStore) -> None:
    tok = new_token()
    body_id = unique("body")
    assert await ensure_token(store.pool, tok, "body", body_id, "up") is True
    assert await ensure_token(store.pool, tok, "body", body_id, "up") is False
    principal = await authenticate(store.pool, tok)
    assert principal is not None and principal.body_id == body_id
    with pytest.raises(ValueError, match="already stored with role 'body'"):
        await ensure_token(store.pool, tok, "admin", None, "up")
    await revoke_token(store.pool, tok)
    assert await ensure_token(store.pool, tok, "body", body_id, "up") is False
    assert await authenticate(store.pool, tok) is None  # a revoked token stays revoked


async def test_ensure_token_refuses_a_weak_token(store: EventStore) -> None:
    with pytest.raises(ValueError, match="token"):
        await ensure_token(store.pool, "secret", "admin", None, "up")


@pytest.mark.parametrize(
    ("role", "body_id", "field"),
    [("king", None, "role"), ("body", None, "body_id"), ("supervisor", "b", "body_id"), ("admin", None, "label")],
)
async def test_issue_token_refuses_a_bad_role_or_scope_naming_the_field(
    store: EventStore, role: str, body_id: str | None, field: str
) -> None:
    label = "  " if field == "label" else None
    with pytest.raises(ValueError, match=f"^{field}: "):
        await issue_token(store.pool, role, body_id, label)


def test_a_principal_of_role_body_needs_a_body_id_and_others_forbid_it() -> None:
    with pytest.raises(ValidationError, match="body_id"):
        Principal(role="body", label="x", id="abc")
    with pytest.raises(ValidationError, match="body_id"):
        Principal(role="operator", body_id="b", label="x", id="abc")
    with pytest.raises(ValidationError, match="role"):
        Principal(role="root", label="x", id="abc")
    principal = Principal(role="body", body_id="b", label="x", id="abc")
    with pytest.raises(ValidationError):
        principal.role = "admin"  # type: ignore[misc]


def test_new_tokens_are_random_and_prefixed() -> None:
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100
    assert all(t.startswith("dv_") and len(t) >= 45 for t in tokens)


async def test_a_body_token_acts_for_one_body_in_force(api: Api, store: EventStore) -> None:
    admin = await token(store, "admin", label="tokens-admin-bodies")
    for body_id, rule in ((unique("NO_SUCH_BODY").upper().replace("-", "_"), "body_unknown"),
                          ("BDV_TU", "body_not_in_force"),  # abolished on 2025-03-01, merged into BTGDV_TU
                          ("UBND_HUYEN", "body_not_in_force")):  # a family of district bodies, not one body
        answer = await api.post("/v1/tokens", admin, json={"role": "body", "body_id": body_id, "label": "cán bộ"})
        assert answer.status_code == 422, (body_id, answer.text)
        assert [(f["field"], f["rule"]) for f in answer.json()["error"]["fields"]] == [("body_id", rule)], body_id
