"""The store's connection pool (`eventstore.pool`), against a real PostgreSQL: what comes back is reused, what
may be busy or broken is closed, and no slot is ever lost, whatever the callers do."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest
import pytest_asyncio

from eventstore import Pool, StoreUnavailableError, create_pool


@pytest_asyncio.fixture
async def url(new_database: Callable[[], Awaitable[str]]) -> str:
    """A database of its own, so that counting its backends counts this pool's connections."""
    return await new_database()


@pytest_asyncio.fixture
async def admin(url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(url)
    yield conn
    await conn.close()


async def backends(admin: asyncpg.Connection) -> set[int]:
    """The pids of the database's client backends other than `admin`'s own."""
    rows = await admin.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend' "
        "AND pid <> pg_backend_pid()"
    )
    return {r["pid"] for r in rows}


async def until(check: Callable[[], Awaitable[bool]], seconds: float = 10.0) -> None:
    """Wait for the server to catch up (a closed connection's backend exits a moment later)."""
    async with asyncio.timeout(seconds):
        while not await check():  # noqa: ASYNC110 (the server has no event to wait on)
            await asyncio.sleep(0.02)


async def pid(pool: Pool) -> int:
    value: int = await pool.fetchval("SELECT pg_backend_pid()")
    return value


async def test_opens_min_size_reuses_the_last_connection_back_and_closes_everything(
    url: str, admin: asyncpg.Connection
) -> None:
    pool = await Pool(url, min_size=2, max_size=4).open()
    assert (pool.get_size(), pool.get_idle_size()) == (2, 2)
    assert len(await backends(admin)) == 2
    first = await pid(pool)
    assert await pid(pool) == first  # the most recently used connection comes first
    await pool.close()
    await until(lambda: _none_left(admin))
    with pytest.raises(asyncpg.exceptions.InterfaceError, match="closed"):
        await pool.fetchval("SELECT 1")


async def _none_left(admin: asyncpg.Connection) -> bool:
    return not await backends(admin)


async def test_never_more_than_max_size_connections_and_every_waiter_is_served(
    url: str, admin: asyncpg.Connection
) -> None:
    pool = await Pool(url, min_size=0, max_size=3).open()
    seen: set[int] = set()

    async def user(i: int) -> None:
        async with pool.acquire() as conn:
            seen.add(await conn.fetchval("SELECT pg_backend_pid() FROM pg_sleep(0.01)"))
            assert pool.get_size() <= 3

    await asyncio.gather(*(user(i) for i in range(40)))
    assert len(seen) == 3 and pool.get_size() == 3 and pool.get_idle_size() == 3
    assert len(await backends(admin)) == 3
    await pool.close()


async def test_a_server_error_leaves_the_connection_in_use(url: str) -> None:
    pool = await Pool(url, min_size=1, max_size=1).open()
    before = await pid(pool)
    with pytest.raises(asyncpg.exceptions.DivisionByZeroError):
        await pool.fetchval("SELECT 1 / 0")
    with pytest.raises(RuntimeError):
        async with pool.acquire() as conn:
            await conn.execute("SELECT 1")
            raise RuntimeError("the caller's own error, between statements")
    assert await pid(pool) == before
    await pool.close()


async def test_a_cancelled_statement_closes_its_connection_and_the_pool_goes_on(
    url: str, admin: asyncpg.Connection
) -> None:
    pool = await Pool(url, min_size=1, max_size=1).open()
    busy = await pid(pool)
    task = asyncio.create_task(pool.execute("SELECT pg_sleep(30)"))
    await until(lambda: _running(admin, "pg_sleep(30)"))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await until(lambda: _gone(admin, busy), seconds=5)  # the server stopped the statement, then the backend
    assert await pid(pool) != busy  # a fresh connection in the freed slot
    assert pool.get_size() == 1
    await pool.close()


async def test_a_statement_that_times_out_closes_its_connection(url: str, admin: asyncpg.Connection) -> None:
    pool = await Pool(url, min_size=1, max_size=1).open()
    busy = await pid(pool)
    with pytest.raises(TimeoutError):
        await pool.execute("SELECT pg_sleep(30)", timeout=0.2)
    await until(lambda: _gone(admin, busy), seconds=5)
    assert await pid(pool) != busy
    await pool.close()


async def test_a_connection_left_inside_a_transaction_is_not_reused(url: str) -> None:
    pool = await Pool(url, min_size=1, max_size=1).open()
    conn = await pool.acquire()
    before = await conn.fetchval("SELECT pg_backend_pid()")
    await conn.execute("BEGIN")
    await pool.release(conn)
    assert await pid(pool) != before  # waits for the slot, which the closing connection holds
    assert conn.is_closed()
    await pool.close()


async def test_a_connection_the_server_closed_while_idle_is_replaced(url: str, admin: asyncpg.Connection) -> None:
    pool = await Pool(url, min_size=2, max_size=2).open()
    for backend in await backends(admin):
        await admin.execute("SELECT pg_terminate_backend($1)", backend)
    await until(lambda: _none_left(admin))
    await asyncio.sleep(0.1)  # the client reads the server's goodbye
    assert await pool.fetchval("SELECT 41 + 1") == 42
    assert pool.get_size() == 1
    await pool.close()


async def test_a_waiter_that_gives_up_takes_no_slot_with_it(url: str) -> None:
    pool = await Pool(url, min_size=1, max_size=1).open()
    held = await pool.acquire()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):
            await pool.fetchval("SELECT 1")
    await pool.release(held)
    assert (pool.get_size(), pool.get_idle_size()) == (1, 1)
    assert await pool.fetchval("SELECT 1") == 1
    await pool.close()


async def test_a_connection_handed_to_a_waiter_cancelled_at_that_moment_goes_back(url: str) -> None:
    pool = await Pool(url, min_size=1, max_size=1).open()
    held = await pool.acquire()
    waiter = asyncio.create_task(pool.fetchval("SELECT 1"))
    await asyncio.sleep(0.05)  # it waits for `held`
    await pool.release(held)  # handed to the waiter, which has not run yet
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert (pool.get_size(), pool.get_idle_size()) == (1, 1)
    assert not held.is_closed()
    await pool.close()


async def test_a_slot_freed_while_others_wait_lets_the_next_one_connect(url: str) -> None:
    pool = await Pool(url, min_size=1, max_size=1).open()
    held = await pool.acquire()
    waiter = asyncio.create_task(pool.fetchval("SELECT 7"))
    await asyncio.sleep(0.05)
    await held.execute("BEGIN")
    await pool.release(held)  # closed (inside a transaction): the waiter gets the slot and connects
    assert await waiter == 7
    assert pool.get_size() == 1
    await pool.close()


async def test_close_waits_for_the_connections_in_use(url: str, admin: asyncpg.Connection) -> None:
    pool = await Pool(url, min_size=1, max_size=2).open()
    finished: list[str] = []

    async def user() -> None:
        async with pool.acquire() as conn:
            await conn.execute("SELECT pg_sleep(0.3)")
            finished.append("user")

    task = asyncio.create_task(user())
    await asyncio.sleep(0.05)
    await pool.close()
    finished.append("close")
    await task
    assert finished == ["user", "close"]
    await until(lambda: _none_left(admin))


async def test_connections_idle_beyond_max_idle_are_closed_down_to_min_size(url: str) -> None:
    pool = await Pool(url, min_size=1, max_size=3, max_idle=0.05).open()
    conns = [await pool.acquire() for _ in range(3)]
    for conn in conns:
        await pool.release(conn)
    assert pool.get_size() == 3
    await asyncio.sleep(0.1)
    for _ in range(3):
        await pool.fetchval("SELECT 1")
    await until(lambda: _size_is(pool, 1))  # closed in the background
    await pool.close()


async def test_a_failed_connect_frees_its_slot(url: str) -> None:
    pool = await Pool(url, min_size=0, max_size=1, connect_timeout=5).open()
    pool.dsn = url.rsplit("/", 1)[0] + "/no_such_database_here"
    with pytest.raises(asyncpg.exceptions.InvalidCatalogNameError):
        await pool.fetchval("SELECT 1")
    assert pool.get_size() == 0
    pool.dsn = url
    assert await pool.fetchval("SELECT 1") == 1
    await pool.close()


async def test_the_store_pool_reports_an_unreachable_server_as_unavailable() -> None:
    with pytest.raises(StoreUnavailableError):
        await create_pool("postgresql://postgres@127.0.0.1:1/postgres")


async def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="min_size"):
        Pool("postgresql://x", min_size=3, max_size=2)


async def _running(admin: asyncpg.Connection, text: str) -> bool:
    found = await admin.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%' || $1 || '%' "
        "AND pid <> pg_backend_pid()",
        text,
    )
    return bool(found)


async def _gone(admin: asyncpg.Connection, backend: int) -> bool:
    return backend not in await backends(admin)


async def _size_is(pool: Pool, size: int) -> bool:
    return pool.get_size() == size


async def test_two_closes_at_once_both_return(url: str) -> None:
    pool = await Pool(url, min_size=1, max_size=2).open()
    held = await pool.acquire()
    first = asyncio.create_task(pool.close())
    second = asyncio.create_task(pool.close())
    await asyncio.sleep(0.05)
    assert not first.done() and not second.done()  # both wait for `held`
    await pool.release(held)
    async with asyncio.timeout(5):
        await asyncio.gather(first, second)
    assert pool.get_size() == 0


async def test_a_checkout_waits_at_most_acquire_timeout_and_a_statement_at_most_command_timeout(
    url: str, admin: asyncpg.Connection
) -> None:
    pool = await Pool(url, min_size=1, max_size=1, acquire_timeout=0.3, command_timeout=0.3).open()
    try:
        async with pool.acquire():
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(TimeoutError, match=r"no free PostgreSQL connection within 0\.3 s"):
                await pool.fetchval("SELECT 1")
            assert 0.25 < loop.time() - started < 3
        assert await pool.fetchval("SELECT 1") == 1  # the slot of the one that gave up was not lost
        assert (pool.get_size(), pool.get_idle_size()) == (1, 1)

        started = loop.time()
        with pytest.raises(TimeoutError):
            await pool.fetchval("SELECT pg_sleep(30)")
        assert loop.time() - started < 3
        # The interrupted connection was retired, not handed out again; the statement stopped on the server.
        assert await pool.fetchval("SELECT 1") == 1
        await until(lambda: _no_sleepers(admin))
        assert await pool.fetchval("SHOW statement_timeout") == "800ms"  # the server's own bound, a bit later
    finally:
        await pool.close()


async def _no_sleepers(admin: asyncpg.Connection) -> bool:
    return not await admin.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE '%pg_sleep(30)%' "
        "AND pid <> pg_backend_pid()")
