"""Schema migrations: from empty, re-run, two processes at once, and a changed migration caught."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable

import asyncpg
import pytest

from eventstore import MigrationError, migrate
from eventstore.migrate import is_current, known_migrations

NewDatabase = Callable[[], Awaitable[str]]

MIGRATE_ONCE = """
import asyncio, sys
import asyncpg
from eventstore import migrate

async def main():
    conn = await asyncpg.connect(sys.argv[1])
    try:
        print(",".join(await migrate(conn)))
    finally:
        await conn.close()

asyncio.run(main())
"""


async def tables(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {r["tablename"] for r in rows}
    finally:
        await conn.close()


async def test_an_empty_database_is_migrated_to_the_current_schema(new_database: NewDatabase) -> None:
    url = await new_database()
    conn = await asyncpg.connect(url)
    try:
        assert not await is_current(conn)
        applied = await migrate(conn)
        assert applied == [f"{m.version:04d}_{m.name}" for m in known_migrations()]
        assert await is_current(conn)
    finally:
        await conn.close()
    assert {"events", "streams", "cases", "api_tokens", "schema_migrations"} <= await tables(url)


async def test_migrating_a_migrated_database_does_nothing(new_database: NewDatabase) -> None:
    url = await new_database()
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
        assert await migrate(conn) == []
        count = await conn.fetchval("SELECT count(*) FROM schema_migrations")
        assert count == len(known_migrations())
    finally:
        await conn.close()


async def test_two_processes_migrating_at_once_apply_each_migration_once(new_database: NewDatabase) -> None:
    url = await new_database()
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", MIGRATE_ONCE, url,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(2)
    ]
    results = [await p.communicate() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err.decode() for _, err in results]
    outputs = sorted(out.decode().strip() for out, _ in results)
    # One did all the work; the other waited on the lock and found nothing left to do.
    assert outputs[0] == ""
    assert outputs[1].split(",") == [f"{m.version:04d}_{m.name}" for m in known_migrations()]
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations") == len(known_migrations())
    finally:
        await conn.close()


async def test_a_migration_changed_after_it_was_applied_is_refused(new_database: NewDatabase) -> None:
    url = await new_database()
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
        await conn.execute("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1")
        with pytest.raises(MigrationError, match="changed after it was applied"):
            await migrate(conn)
        assert not await is_current(conn)
    finally:
        await conn.close()


async def test_a_database_newer_than_the_code_is_refused(new_database: NewDatabase) -> None:
    url = await new_database()
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
        await conn.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES (999, 'future', 'x')")
        with pytest.raises(MigrationError, match="does not know"):
            await migrate(conn)
    finally:
        await conn.close()
