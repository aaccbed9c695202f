"""Bearer tokens of the HTTP API: made, stored hashed, looked up.

A token is `dv_` followed by 32 random bytes (urlsafe base64). Only its SHA-256 (hex) is stored, in
`api_tokens.token_hash`; the token itself is shown once, when it is issued. A plain, unsalted SHA-256 is
the right tool here because a token carries 256 bits of entropy: there is nothing to guess, so a slow
password hash would only cost CPU on every request (and a salt would make lookup by hash impossible).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import date
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from domain.bodies import Body, BodyRegistry
from domain.jsontypes import stripped_at_least
from eventstore import Pool
from eventstore.store import translate_errors

Role = Literal["intake", "body", "supervisor", "operator", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)

TOKEN_PREFIX = "dv_"
#: Shorter tokens are refused by `ensure_token`: a plain SHA-256 is only safe for high-entropy tokens.
MIN_TOKEN_LENGTH = 32
#: How many hex digits of the token hash name a token in logs and answers (never the token itself).
TOKEN_ID_LENGTH = 12


def check_role(role: str) -> Role:
    """`role` if it is one of `ROLES`; else a ValueError naming the field."""
    if role not in ROLES:
        raise ValueError(f"role: must be one of {', '.join(ROLES)}, not {role!r}")
    return role


def check_scope(role: str, body_id: str | None) -> None:
    """Role `body` needs a body_id; every other role must not have one (the table enforces it too)."""
    if role == "body" and not body_id:
        raise ValueError("body_id: required when role is 'body'")
    if role != "body" and body_id is not None:
        raise ValueError(f"body_id: only a 'body' token has one, not a {role!r} token")


class Principal(BaseModel):
    """Who is calling: the role and scope of the token the request carried."""

    model_config = ConfigDict(frozen=True)

    role: Role
    body_id: str | None = None
    label: str
    #: The first digits of the token's hash: names the token in logs and events without revealing it.
    id: str

    @model_validator(mode="after")
    def _scoped(self) -> Principal:
        check_scope(self.role, self.body_id)
        return self


def check_token_body(registry: BodyRegistry, code: str, on: date) -> Body:
    """The body a `body` token for `code` acts for, if one may be issued on `on`: a body of `registry` in force
    that day, and one body (not a family of district bodies, whose instances are the bodies, nor a group code
    standing for several). Otherwise `domain.bodies.UnknownBody` for a code the registry lacks, and a ValueError
    saying why for the others (`domain.bodies.BodyNotEffective` names the body's dates and its successor)."""
    body = registry.get(code)
    if body.is_family:
        examples = ", ".join(b.code for b in registry.instances(code)[:2])
        raise ValueError(f"body {code} ({body.name_vi}) is a family of district bodies: give one of its instances"
                         + (f", e.g. {examples}" if examples else ""))
    if body.members:
        raise ValueError(f"body {code} ({body.name_vi}) is a group standing for {', '.join(body.members)}: "
                         "give one of them")
    return registry.effective(code, on)


def new_token() -> str:
    """A fresh random token (256 bits of entropy)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The SHA-256 hex digest under which a token is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_id(token_hash: str) -> str:
    return token_hash[:TOKEN_ID_LENGTH]


def _checked(role: str, body_id: str | None, label: str | None) -> tuple[Role, str]:
    checked_role = check_role(role)
    check_scope(checked_role, body_id)
    if label is None:
        label = f"body:{body_id}" if body_id else checked_role
    label = label.strip()
    if not label:
        raise ValueError("label: must not be empty")
    return checked_role, label


async def issue_token(pool: Pool, role: str, body_id: str | None = None, label: str | None = None) -> str:
    """Make a token for `role` (and `body_id` for role `body`), store its hash, return the token once.

    `label` says whose token it is; for an `intake` token it is the name of the sending system, which is
    what `source` of the cases it sends holds (see `api.auth.check_case_access`). Without a label, the
    role (or `body:<body_id>`) is used.
    """
    checked_role, label = _checked(role, body_id, label)
    token = new_token()
    with translate_errors():
        await pool.execute(
            "INSERT INTO api_tokens (token_hash, role, body_id, label) VALUES ($1, $2, $3, $4)",
            hash_token(token),
            checked_role,
            body_id,
            label,
        )
    return token


async def ensure_token(
    pool: Pool, token: str, role: str, body_id: str | None = None, label: str | None = None
) -> bool:
    """Register a token made elsewhere (by `danvan up`, which keeps its tokens in `.danvan/tokens.json`).

    Idempotent: returns True when the token was added, False when it was already there. A token already
    stored with another role or body is an error (ValueError), never silently re-scoped; a revoked token
    stays revoked.
    """
    checked_role, label = _checked(role, body_id, label)
    if len(token) < MIN_TOKEN_LENGTH or any(c.isspace() for c in token):
        raise ValueError(f"token: must be at least {MIN_TOKEN_LENGTH} characters without spaces (use new_token())")
    token_hash = hash_token(token)
    with translate_errors():
        inserted = await pool.fetchval(
            "INSERT INTO api_tokens (token_hash, role, body_id, label) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (token_hash) DO NOTHING RETURNING true",
            token_hash,
            checked_role,
            body_id,
            label,
        )
        if inserted:
            return True
        row = await pool.fetchrow("SELECT role, body_id FROM api_tokens WHERE token_hash = $1", token_hash)
    if row is not None and (row["role"], row["body_id"]) != (checked_role, body_id):
        raise ValueError(
            f"token {token_id(token_hash)}: already stored with role {row['role']!r} and body_id {row['body_id']!r}"
        )
    return False


async def revoke_token(pool: Pool, token: str) -> bool:
    """Revoke a token and end its console sessions; True if it was active. Cached lookups expire within
    `api.auth.TokenCache.ttl`; a console session stops at its next request."""
    with translate_errors():
        revoked = await pool.fetchval(
            "WITH revoked AS (UPDATE api_tokens SET revoked_at = now() WHERE token_hash = $1 AND revoked_at IS NULL "
            "RETURNING true), "
            "ended AS (UPDATE console_sessions SET ended_at = now() WHERE token_hash = $1 AND ended_at IS NULL) "
            "SELECT EXISTS (SELECT FROM revoked)",
            hash_token(token),
        )
    return bool(revoked)


def _principal(token_hash: str, row: Any) -> Principal:
    return Principal(role=row["role"], body_id=row["body_id"], label=row["label"], id=token_id(token_hash))


async def authenticate(pool: Pool, token: str) -> Principal | None:
    """The principal of an active token; None when the token is unknown or revoked."""
    if not token:
        return None
    token_hash = hash_token(token)
    with translate_errors():
        row = await pool.fetchrow(
            "SELECT role, body_id, label FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
            token_hash,
        )
    return _principal(token_hash, row) if row is not None else None


def _body_only_for_body_role(schema: dict[str, Any]) -> None:
    """The OpenAPI states the rule `_scoped` enforces: `body_id` is required for role `body`, refused (or null)
    for every other role."""
    others = [role for role in ROLES if role != "body"]
    schema["oneOf"] = [
        {"properties": {"role": {"const": "body"}, "body_id": {"type": "string"}}, "required": ["body_id"]},
        {"properties": {"role": {"enum": others}, "body_id": {"type": "null"}}},
    ]


class TokenRequest(BaseModel):
    """`POST /v1/tokens`: what the new token may do."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra=_body_only_for_body_role)

    role: Role
    # Stripped of spaces at either end (`str_strip_whitespace`) before their lengths are measured.
    body_id: str | None = Field(default=None, min_length=1, max_length=100, pattern=stripped_at_least(1),
                                validate_default=True)
    label: str = Field(min_length=1, max_length=200, pattern=stripped_at_least(1))

    @field_validator("body_id")
    @classmethod
    def _scoped(cls, body_id: str | None, info: ValidationInfo) -> str | None:
        # A field validator, not a model validator, so that the 422 names `body_id`.
        role = info.data.get("role")
        if role is None:  # the role itself is invalid and reported on its own
            return body_id
        if role == "body" and body_id is None:
            raise PydanticCustomError("missing", "body_id is required when role is 'body'")
        if role != "body" and body_id is not None:
            raise PydanticCustomError("forbidden", "body_id is only allowed when role is 'body'")
        return body_id


class TokenIssued(BaseModel):
    """The answer to `POST /v1/tokens`. The token is shown here once and never again."""

    token: str
    id: str
    role: Role
    body_id: str | None
    label: str
