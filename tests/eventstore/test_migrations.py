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


async def test_stream_heads_written_before_0007_get_their_prev_hash_and_appends_go_on(
    new_database: NewDatabase,
) -> None:
    """A database written by the code of migrations 1-6 (every append through `danvan_append`) is migrated;
    each head's new `prev_hash` is its last event's, the chains verify, and the one-statement append
    continues them."""
    import uuid
    from datetime import UTC, datetime

    from eventstore import EventStore, NewEvent
    from eventstore.canonical import canonical_text

    url = await new_database()
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, "
            "checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for m in known_migrations()[:6]:
            await conn.execute(m.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                m.version, m.name, m.checksum,
            )

        def ev(n: int) -> NewEvent:
            return NewEvent(event_id=uuid.uuid4(), type="Noted", occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
                            data={"n": n, "ghi_chú": "Đơn thư"})

        for stream, sizes in (("một", [1]), ("hai", [1, 2]), ("ba", [3, 1, 1])):
            version = 0
            for size in sizes:
                texts = [canonical_text(stream, version + i, ev(version + i)) for i in range(1, size + 1)]
                await conn.execute("SELECT danvan_append($1, $2, $3, NULL)", stream, version, texts)
                version += size
        assert (await migrate(conn))[0] == "0007_one_statement_append"  # and any later ones
        mismatched = await conn.fetchval(
            "SELECT count(*) FROM streams s JOIN events e ON e.stream_id = s.stream_id AND e.version = s.version "
            "WHERE s.prev_hash <> e.prev_hash"
        )
        assert mismatched == 0 and await conn.fetchval("SELECT count(*) FROM streams") == 3
    finally:
        await conn.close()
    store = await EventStore.open(url, max_size=2)
    try:
        assert (await store.verify()).ok
        for stream, version in (("một", 1), ("hai", 3), ("ba", 5)):
            result = await store.append(stream, version, [ev(version + 1)])
            assert result.version == version + 1 and not result.duplicate
        report = await store.verify()
        assert report.ok and report.events_checked == 12
    finally:
        await store.close()
