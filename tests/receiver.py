"""A webhook receiver for the tests: a small HTTP/1.1 server on 127.0.0.1 that keeps every request it gets and
answers as the test says (2xx, an error, a redirect, no answer at all), and that can go down and come back on
the same port.

Written on asyncio's streams rather than a web framework: the tests need to cut a connection mid-request, to
hang past the client's timeout and to stop listening at once, which is what a framework hides.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Received:
    """One request, and what it was answered (`status` None: no answer; the connection was dropped)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    status: int | None = None

    @property
    def accepted(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


#: What to answer a request: an HTTP status, or ("hang", seconds) to hold the connection without answering,
#: ("delay", seconds) to answer 200 after a while, or ("redirect", location).
Answer = int | tuple[str, float] | tuple[str, str]


@dataclass
class Receiver:
    answer: Callable[[Received], Answer] = field(default=lambda _: 204)
    port: int = 0
    requests: list[Received] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _connections: set[asyncio.StreamWriter] = field(default_factory=set)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def start(self) -> Receiver:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def stop(self) -> None:
        """Stop listening and drop every open connection (a receiver that went down)."""
        if self._server is not None:
            self._server.close()
            for writer in list(self._connections):
                writer.transport.abort()
            for task in list(self._tasks):
                task.cancel()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    @property
    def accepted(self) -> list[Received]:
        return [r for r in self.requests if r.accepted]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._connections.add(writer)
        try:
            while True:
                request = await self._read(reader)
                if request is None:
                    return
                self.requests.append(request)
                self.arrived.set()
                answer = self.answer(request)
                if isinstance(answer, tuple) and answer[0] == "hang":
                    await asyncio.sleep(float(answer[1]))
                    writer.transport.abort()  # never answered
                    return
                if isinstance(answer, tuple) and answer[0] == "delay":
                    await asyncio.sleep(float(answer[1]))
                    answer = 200
                if isinstance(answer, tuple):
                    request.status = 302
                    writer.write(f"HTTP/1.1 302 Found\r\nLocation: {answer[1]}\r\nContent-Length: 0\r\n\r\n".encode())
                else:
                    request.status = int(answer)
                    body = b"" if answer in (204, 304) else b"ok"  # a 204 has no body
                    writer.write(f"HTTP/1.1 {answer} Answer\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            return
        finally:
            self._connections.discard(writer)
            self._tasks.discard(task)
            writer.transport.abort()

    async def _read(self, reader: asyncio.StreamReader) -> Received | None:
        line = await reader.readline()
        if not line:
            return None
        method, path, _ = line.decode("latin-1").split(" ", 2)
        headers: dict[str, str] = {}
        while True:
            header = (await reader.readline()).decode("latin-1")
            if header in ("\r\n", "\n", ""):
                break
            name, _, value = header.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        return Received(method=method, path=path, headers=headers, body=body, at=time.monotonic())
