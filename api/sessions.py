"""Console sessions, kept on the server: the cookie carries a random session id, never the bearer token.

Signing in checks the token by the API's rules and creates a session: 32 random bytes (`secrets`), of which only
the SHA-256 is stored (`console_sessions`, migration 0008), with the token it signs in as, so a copy of the
table opens nothing. Every console request resolves its cookie here, in one statement that also records the
use: the session must not be signed out, must have been used within the idle period and be before its absolute
expiry, and its token must not be revoked. Signing out ends the session on the server, so the old cookie opens
nothing even if replayed; revoking a token ends its sessions too (`api.tokens.revoke_token`).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from eventstore import Pool
from eventstore.store import translate_errors

from .tokens import Principal, token_id

#: Bytes of randomness in a session id (it is sent as URL-safe base64, 43 characters).
SESSION_BYTES = 32


def session_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Session:
    """A live session: who it signs in as, and how long its cookie may live in the browser (seconds)."""

    principal: Principal
    max_age: int


async def create_session(pool: Pool, token_hash: str, *, absolute: int) -> str:
    """A new session for the token `token_hash`, ending at the latest `absolute` seconds from now; its id."""
    session_id = secrets.token_urlsafe(SESSION_BYTES)
    with translate_errors():
        await pool.execute(
            "INSERT INTO console_sessions (session_hash, token_hash, expires_at) "
            "VALUES ($1, $2, now() + make_interval(secs => $3))",
            session_hash(session_id), token_hash, float(absolute),
        )
    return session_id


_RESOLVE = """
    UPDATE console_sessions AS s SET last_seen_at = now()
      FROM api_tokens AS t
     WHERE s.session_hash = $1 AND s.ended_at IS NULL AND s.expires_at > now()
       AND s.last_seen_at > now() - make_interval(secs => $2)
       AND t.token_hash = s.token_hash AND t.revoked_at IS NULL
    RETURNING t.token_hash, t.role, t.body_id, t.label,
              ceil(extract(epoch FROM s.expires_at - now()))::integer AS left_seconds
"""


async def resolve_session(pool: Pool, session_id: str, *, idle: int) -> Session | None:
    """The live session of `session_id` (and its use recorded), or None: unknown, signed out, idle longer than
    `idle` seconds, past its absolute expiry, or its token revoked."""
    with translate_errors():
        row = await pool.fetchrow(_RESOLVE, session_hash(session_id), float(idle))
    if row is None:
        return None
    principal = Principal(role=row["role"], body_id=row["body_id"], label=row["label"],
                          id=token_id(row["token_hash"]))
    return Session(principal=principal, max_age=max(1, row["left_seconds"]))


async def end_session(pool: Pool, session_id: str) -> bool:
    """Sign out: the session ends now (True if it was live)."""
    with translate_errors():
        ended = await pool.fetchval(
            "UPDATE console_sessions SET ended_at = now() WHERE session_hash = $1 AND ended_at IS NULL "
            "RETURNING true",
            session_hash(session_id),
        )
    return bool(ended)
