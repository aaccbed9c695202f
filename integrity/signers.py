"""What a checkpoint signer says of itself in the database, and when a checkpoint is late.

The signer (`danvan checkpoint`, with `--every N` the one `danvan up` runs) works where the signing key is and
nowhere else, so the rest of the installation cannot look at its log to know whether it keeps signing. It
writes a row of `checkpoint_signers` (migration 0018) instead: its interval when it starts, each try, each
checkpoint signed (its number, size and root), each failure with its message, and its stop. The log stays the
record of what was signed; a writer of the database can make this row lie, which only hides lateness from the
queue and the metrics, never changes what `danvan verify` finds.

A checkpoint is **late** when a running signer with an interval has not signed one for `LATE_INTERVALS` of its
intervals (counted from its last checkpoint, or from its start when it has signed none): its process died
without stopping, its database reads fail, or the heads contradict the last checkpoint (`TamperDetected`, then
its last error says which streams). A signer stopped cleanly (its `stopped_at`) is not late: it was stopped.
`late_signers` is the one rule; the stalled scan (`ops.subjects`) and the API's metrics read it.

An operator's "take a checkpoint now" is a request (a row of `ops_remedies`, subject `checkpoint`) that the
signer looks for every second (`pending_requests`) and carries out at once, saying how it went
(`requests_done`); a checkpoint taken by hand satisfies the requests pending too.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from eventstore import Pool

log = logging.getLogger("danvan.checkpoint")

#: A checkpoint is late after this many of its signer's intervals without one (as the console's ops page says).
LATE_INTERVALS = 3


def signer_id(log_path: Path) -> str:
    """The signer of a log: the host it runs on and the log's path."""
    return f"{socket.gethostname()}:{log_path}"


async def signer_started(pool: Pool, signer: str, log_path: Path, every: int | None, key: str | None) -> None:
    """A signer starts (again): its interval, its key's fingerprint; not stopped."""
    await pool.execute(
        "INSERT INTO checkpoint_signers (signer, key_fingerprint, log_path, every_seconds, started_at) "
        "VALUES ($1, $2, $3, $4, now()) ON CONFLICT (signer) DO UPDATE SET key_fingerprint = EXCLUDED.key_fingerprint, "
        "log_path = EXCLUDED.log_path, every_seconds = EXCLUDED.every_seconds, started_at = now(), stopped_at = NULL",
        signer, key, str(log_path), every)


async def signer_signed(pool: Pool, signer: str, log_path: Path, seq: int, tree_size: int, root: str) -> None:
    """A checkpoint was signed (by a signer that may not have said it started: one taken by hand)."""
    await pool.execute(
        "INSERT INTO checkpoint_signers (signer, log_path, started_at, last_try_at, last_signed_at, last_seq, "
        "last_tree_size, last_root) VALUES ($1, $2, now(), now(), now(), $3, $4, $5) "
        "ON CONFLICT (signer) DO UPDATE SET last_try_at = now(), last_signed_at = now(), last_seq = $3, "
        "last_tree_size = $4, last_root = $5, last_error = NULL, last_error_at = NULL",
        signer, str(log_path), seq, tree_size, root)


async def signer_failed(pool: Pool, signer: str, log_path: Path, error: str) -> None:
    await pool.execute(
        "INSERT INTO checkpoint_signers (signer, log_path, started_at, last_try_at, last_error, last_error_at) "
        "VALUES ($1, $2, now(), now(), $3, now()) ON CONFLICT (signer) DO UPDATE SET last_try_at = now(), "
        "last_error = $3, last_error_at = now()",
        signer, str(log_path), error[:2000])


async def signer_stopped(pool: Pool, signer: str) -> None:
    await pool.execute("UPDATE checkpoint_signers SET stopped_at = now() WHERE signer = $1", signer)


async def pending_requests(pool: Pool) -> list[int]:
    """The operators' requests for a checkpoint now that no signer has carried out yet."""
    rows = await pool.fetch("SELECT id FROM ops_remedies WHERE subject = 'checkpoint' AND done_at IS NULL "
                            "ORDER BY id LIMIT 100")
    return [int(r["id"]) for r in rows]


async def requests_done(pool: Pool, ids: list[int], outcome: str) -> None:
    if ids:
        await pool.execute("UPDATE ops_remedies SET done_at = now(), outcome = $2 WHERE id = ANY($1::bigint[]) "
                           "AND done_at IS NULL", ids, outcome[:2000])


@dataclass(frozen=True)
class LateSigner:
    """A signer whose checkpoint is late: since when the next one was due, and what it last said."""

    signer: str
    every_seconds: int
    due_since: datetime
    last_signed_at: datetime | None
    last_seq: int | None
    last_error: str | None
    last_error_at: datetime | None
    last_try_at: datetime | None


#: The one rule of lateness (see the module's docstring); `$1` is now.
LATE_SQL = f"""
SELECT signer, every_seconds, last_signed_at, last_seq, last_error, last_error_at, last_try_at,
       coalesce(last_signed_at, started_at) + make_interval(secs => every_seconds) AS due_since
  FROM checkpoint_signers
 WHERE every_seconds IS NOT NULL AND stopped_at IS NULL
   AND coalesce(last_signed_at, started_at) < $1::timestamptz - make_interval(secs => every_seconds * {LATE_INTERVALS})
 ORDER BY signer
"""


async def late_signers(pool: Pool, now: datetime) -> list[LateSigner]:
    rows = await pool.fetch(LATE_SQL, now)
    return [LateSigner(**dict(r)) for r in rows]


def late_detail(s: LateSigner, now: datetime) -> str:
    """The finding's words: how long without a checkpoint, and the signer's last error."""
    last = (f"the last, checkpoint {s.last_seq}, was signed {_ago(now - s.last_signed_at)} ago"
            if s.last_signed_at is not None and s.last_seq is not None else "none was signed since it started")
    text = f"no checkpoint signed for {LATE_INTERVALS} intervals of {s.every_seconds} s: {last}"
    if s.last_error:
        text += f"; its last try failed: {s.last_error}"
    elif s.last_try_at is None or now - s.last_try_at > timedelta(seconds=LATE_INTERVALS * s.every_seconds):
        text += "; it has not tried since: is its process running?"
    return text


def _ago(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} hours"
    if seconds >= 60:
        return f"{seconds // 60} min"
    return f"{seconds} s"
