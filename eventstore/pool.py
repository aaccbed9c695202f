"""The store's connection pool: asyncpg connections shared by the tasks of one event loop.

Why not `asyncpg.Pool`: its checkout and release are general (a proxy object per checkout, a reset coroutine, an
idle timer set and cancelled at every call, and a release shielded in a task of its own, which costs the caller
an extra turn of the event loop). On a single-row statement that bookkeeping costs about as much client time as
the statement itself (`bench/README.md` has the figures). This pool keeps only what the store needs: a stack of
idle connections, a queue of waiting tasks, and one rule for what comes back.

- A caller gets the most recently used idle connection, else opens a new one while fewer than `max_size` are
  open, else waits its turn (first come, first served).
- A connection comes back idle, and goes to the next waiting task or onto the stack, when its user finished
  normally or with an ordinary error: a statement that failed on the server, or an exception of the caller's
  own. Those can only happen between statements, so the connection has nothing in flight. It must also be
  outside any transaction (every transaction of the project is a context manager, which has ended by then).
  An error of the driver itself (a broken socket, a reply it could not follow) retires it: its protocol may
  still be waiting for the rest of a reply.
- Anything else retires the connection: after cancellation or a timeout (a statement may still be running,
  and asyncpg has sent the server a cancel request), or when it was left inside a transaction. It is closed in
  the background, once the server has stopped the statement; then its slot goes to the next waiting task,
  which opens a fresh connection. A connection that broke just frees its slot.
- A connection that broke while idle (a server restart) is noticed at checkout and replaced.
- Every wait is bounded when `acquire_timeout` and `command_timeout` are given (the API gives them; see
  `api.deadline`): a checkout that finds no free connection in time raises `TimeoutError`, and every statement
  has asyncpg's client-side timeout and the server's `statement_timeout`, so neither a frozen server nor a
  lock held elsewhere keeps a caller waiting. While a task waits on the pool it is counted in its
  `danvan.waits` record, so that a deadline passing can name PostgreSQL.
- Connections beyond `min_size` that stay idle longer than `max_idle` seconds are closed when a connection
  comes back (there is no timer; a pool nobody uses keeps what it has).

Sessions are not reset on the way back: the store's callers never change session state (no SET, LISTEN or
session advisory lock), so a reset would only cost a round trip. The API mirrors `asyncpg.Pool` where the
project uses it: `acquire` (awaited, or as `async with`), `release`, `execute`, `executemany`, `fetch`,
`fetchrow`, `fetchval`, `close`.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Generator
from types import TracebackType
from typing import Any

import asyncpg

from danvan import waits

Connection = Any  # asyncpg.Connection (asyncpg ships no type information)
InitHook = Callable[[Connection], Awaitable[None]]
#: Errors after which a connection is not given to anyone else: a timeout (a statement may still run), and the
#: driver's own failures (a broken socket, a reply it could not follow), which leave its protocol in no known state.
_DRIVER_TROUBLE = (TimeoutError, OSError, asyncpg.exceptions.InterfaceError, asyncpg.exceptions.InternalClientError)
_CLOSE_TIMEOUT = 10.0  # seconds for a connection being retired to close gracefully before it is cut


class _Checkout:
    """`pool.acquire()`: awaited, the connection (give it back with `release`); with `async with`, given back
    on the way out."""

    __slots__ = ("conn", "pool")

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.conn: Connection = None

    def __await__(self) -> Generator[Any, None, Connection]:
        return self.pool._checkout().__await__()

    async def __aenter__(self) -> Connection:
        self.conn = await self.pool._checkout()
        return self.conn

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        conn, self.conn = self.conn, None
        self.pool._give_back(conn, exc)


class Pool:
    """Up to `max_size` connections to `dsn`, `min_size` of them opened by `open`. `init` runs on every new
    connection (type codecs)."""

    def __init__(
        self,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        init: InitHook | None = None,
        max_idle: float = 300.0,
        connect_timeout: float = 60.0,
        acquire_timeout: float | None = None,
        command_timeout: float | None = None,
    ) -> None:
        if max_size < 1 or not 0 <= min_size <= max_size:
            raise ValueError(f"need 0 <= min_size <= max_size and max_size >= 1 (got {min_size}, {max_size})")
        self.dsn = dsn
        self.min_size = min_size
        self.max_size = max_size
        self.max_idle = max_idle
        self.connect_timeout = connect_timeout
        self.acquire_timeout = acquire_timeout
        self.command_timeout = command_timeout
        self._init = init
        self._idle: deque[tuple[Connection, float]] = deque()  # (connection, idle since), oldest first
        self._waiters: deque[asyncio.Future[Connection]] = deque()  # a connection, or None: a free slot
        self._opened = 0  # connections open or being opened: the slots taken
        self._closing = False
        self._all_back: asyncio.Future[None] | None = None
        self._retiring: set[asyncio.Task[None]] = set()  # connections being closed

    # -- opening and closing ----------------------------------------------------------------------------

    async def open(self) -> Pool:
        """Open `min_size` connections; if any cannot be opened, close the others and raise."""
        self._opened += self.min_size
        results = await asyncio.gather(*(self._connect() for _ in range(self.min_size)), return_exceptions=True)
        opened = [r for r in results if not isinstance(r, BaseException)]
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            self._opened -= self.min_size
            await asyncio.gather(*(c.close() for c in opened), return_exceptions=True)
            raise failed[0]
        now = time.monotonic()
        self._idle.extend((c, now) for c in opened)
        return self

    async def close(self) -> None:
        """Refuse new checkouts, wait until every connection in use comes back, then close them all."""
        if not self._closing:
            self._closing = True
            while self._waiters:
                waiter = self._waiters.popleft()
                if not waiter.done():
                    waiter.set_exception(asyncpg.exceptions.InterfaceError("the connection pool is closing"))
        if self._opened > len(self._idle):
            if self._all_back is None:
                self._all_back = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._all_back)  # a second `close` waits for the same moment
        idle = [conn for conn, _ in self._idle]
        self._idle.clear()
        self._opened -= len(idle)
        await asyncio.gather(*(c.close() for c in idle), *self._retiring, return_exceptions=True)

    def get_size(self) -> int:
        """Connections open or being opened."""
        return self._opened

    def get_idle_size(self) -> int:
        return len(self._idle)

    # -- checkout and return --------------------------------------------------------------------------

    def acquire(self) -> _Checkout:
        return _Checkout(self)

    async def release(self, conn: Connection) -> None:
        """Give back a connection taken with `await pool.acquire()`."""
        self._give_back(conn, None)

    async def _connect(self) -> Connection:
        if self.command_timeout is None:
            conn = await asyncpg.connect(self.dsn, timeout=self.connect_timeout)
        else:
            # The server stops a statement a little after the client gave up on it: the client's timeout
            # answers the caller (and sends a cancel request), the server's catches what the cancel misses.
            conn = await asyncpg.connect(
                self.dsn, timeout=self.connect_timeout, command_timeout=self.command_timeout,
                server_settings={"statement_timeout": str(int(self.command_timeout * 1000) + 500)},
            )
        if self._init is not None:
            try:
                await self._init(conn)
            except BaseException:
                conn.terminate()
                raise
        return conn

    async def _checkout(self) -> Connection:
        if self._closing:
            raise asyncpg.exceptions.InterfaceError("the connection pool is closed")
        idle = self._idle
        while idle:
            conn = idle.pop()[0]
            if not conn.is_closed():
                return conn
            self._opened -= 1  # it broke while idle
        if self._opened < self.max_size:
            self._opened += 1
            return await self._connect_in_slot()
        waiter: asyncio.Future[Connection] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            if self.acquire_timeout is None:
                conn = await waiter
            else:
                async with asyncio.timeout(self.acquire_timeout):
                    conn = await waiter
        except TimeoutError:
            self._drop_waiter(waiter)
            raise TimeoutError(
                f"no free PostgreSQL connection within {self.acquire_timeout:g} s ({self.max_size} in use)"
            ) from None
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # handed over as the caller was cancelled: pass it on
                handed = waiter.result()
                if handed is None:
                    self._free_slot()
                else:
                    self._give_back(handed, None)
            raise
        return conn if conn is not None else await self._connect_in_slot()

    def _drop_waiter(self, waiter: asyncio.Future[Connection]) -> None:
        """A waiter gave up: take it out of the queue, and pass on what was handed to it meanwhile."""
        if waiter.done() and not waiter.cancelled():
            handed = waiter.result()
            if handed is None:
                self._free_slot()
            else:
                self._give_back(handed, None)
        else:
            waiter.cancel()
            try:
                self._waiters.remove(waiter)
            except ValueError:
                pass

    async def _connect_in_slot(self) -> Connection:
        try:
            return await self._connect()
        except BaseException:
            self._free_slot()
            raise

    def _give_back(self, conn: Connection, exc: BaseException | None) -> None:
        if conn.is_closed():
            self._free_slot()
            return
        # Cancelled or timed out (a statement may still be running), left inside a transaction, or failed in the
        # driver itself rather than on the server (its protocol may be between two messages of a reply).
        if (exc is not None and not isinstance(exc, Exception)) or isinstance(exc, _DRIVER_TROUBLE) \
                or conn.is_in_transaction():
            self._retire(conn)
            return
        if self._hand_over(conn):
            return
        idle = self._idle
        now = time.monotonic()
        idle.append((conn, now))
        if self._closing:
            self._check_all_back()
        elif self._opened - len(self._retiring) > self.min_size and now - idle[0][1] > self.max_idle:
            self._retire(idle.popleft()[0])

    def _retire(self, conn: Connection) -> None:
        """Close `conn` in the background, then free its slot. asyncpg's graceful close first waits for the
        cancel request it sent for an interrupted statement (so the server stops running it, and its locks
        go), then says goodbye; the slot stays taken until then, so that never more than `max_size` backends
        work for the pool."""
        task = asyncio.get_running_loop().create_task(self._close_then_free(conn))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _close_then_free(self, conn: Connection) -> None:
        try:
            await conn.close(timeout=_CLOSE_TIMEOUT)
        except Exception:  # it would not close in time, or broke meanwhile: cut it (nobody waits for this task)
            conn.terminate()
        except BaseException:
            conn.terminate()
            raise
        finally:
            self._free_slot()

    def _free_slot(self) -> None:
        """A connection is gone (or was never made): its slot goes to the next waiting task, which opens one."""
        if self._hand_over(None):
            return
        self._opened -= 1
        if self._closing:
            self._check_all_back()

    def _hand_over(self, conn: Connection) -> bool:
        """Give `conn` (None: a free slot) to the first task still waiting; False when none is."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return True
        return False

    def _check_all_back(self) -> None:
        if self._all_back is not None and not self._all_back.done() and self._opened <= len(self._idle):
            self._all_back.set_result(None)

    # -- one statement on a connection of the pool --------------------------------------------------------

    async def _run(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        record = waits.current.get()
        if record is not None:
            record.postgres += 1
        try:
            conn = await self._checkout()
            try:
                result = await getattr(conn, method)(*args, **kwargs)
            except BaseException as exc:
                self._give_back(conn, exc)
                raise
            self._give_back(conn, None)
            return result
        finally:
            if record is not None:
                record.postgres -= 1

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:
        result: str = await self._run("execute", (query, *args), {"timeout": timeout})
        return result

    async def executemany(self, command: str, args: Any, *, timeout: float | None = None) -> None:
        await self._run("executemany", (command, args), {"timeout": timeout})

    async def fetch(self, query: str, *args: Any, timeout: float | None = None) -> list[Any]:
        rows: list[Any] = await self._run("fetch", (query, *args), {"timeout": timeout})
        return rows

    async def fetchrow(self, query: str, *args: Any, timeout: float | None = None) -> Any:
        return await self._run("fetchrow", (query, *args), {"timeout": timeout})

    async def fetchval(self, query: str, *args: Any, column: int = 0, timeout: float | None = None) -> Any:
        return await self._run("fetchval", (query, *args), {"column": column, "timeout": timeout})
