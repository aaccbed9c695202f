"""Versioned schema migrations, applied at start.

Migrations are the files `migrations/NNNN_name.sql`, applied in order, each in its own transaction, and
recorded in `schema_migrations` with a checksum. A session-level advisory lock serialises processes that
start at once: the second waits, then finds nothing left to do. An applied migration whose file changed
is an error, never silently re-applied.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

from .errors import MigrationError

#: Arbitrary, fixed key of the advisory lock that serialises migrators ("danvan" in ASCII, as an int).
MIGRATION_LOCK_KEY = 0x64616E76616E

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


def known_migrations() -> list[Migration]:
    """The migrations shipped with this code, in order."""
    found = []
    for entry in resources.files("eventstore").joinpath("migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    # Numbers are handed out ahead of the work that uses them, so one may be missing for a while (another
    # line of work holds it); two files with one number are never right.
    if len(set(versions)) != len(versions) or (versions and versions[0] < 1):
        raise MigrationError(f"migration files must have distinct numbers from 1, found {versions}")
    return found


async def applied_versions(conn: asyncpg.Connection) -> dict[int, str]:
    """Version -> checksum of what the database has applied (empty when it has never been migrated)."""
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return {}
    rows = await conn.fetch("SELECT version, checksum FROM schema_migrations")
    return {r["version"]: r["checksum"] for r in rows}


async def pending(conn: asyncpg.Connection) -> list[Migration]:
    """Known migrations not yet applied; raises if the database and the code disagree."""
    applied = await applied_versions(conn)
    known = known_migrations()
    by_version = {m.version: m for m in known}
    for version, checksum in applied.items():
        mine = by_version.get(version)
        if mine is None:
            raise MigrationError(
                f"the database has migration {version}, which this code does not know: it is older than the schema"
            )
        if mine.checksum != checksum:
            raise MigrationError(f"migration {version} ({mine.name}) was changed after it was applied")
    return [m for m in known if m.version not in applied]


async def migrate(conn: asyncpg.Connection) -> list[str]:
    """Apply every pending migration; return the names applied (empty when the schema was current)."""
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
    try:
        await conn.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version    integer PRIMARY KEY,
                name       text NOT NULL,
                checksum   text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        done = []
        for migration in await pending(conn):
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            done.append(f"{migration.version:04d}_{migration.name}")
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)


async def is_current(conn: asyncpg.Connection) -> bool:
    """True when every known migration is applied (what `/readyz` asks)."""
    try:
        return not await pending(conn)
    except MigrationError:
        return False
