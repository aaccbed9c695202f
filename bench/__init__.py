"""Benchmarks of the event store (not part of the installed package; run with `python -m bench.…`)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def in_new_database(server_url: str, run: Callable[[str], Coroutine[Any, Any, T]]) -> T:
    """`run(url)` on a database of its own on `server_url`, made empty for it and dropped after it, whatever
    happens (a benchmark never measures on, or leaves anything in, a database someone uses)."""
    from danvan.postgres import create_database, drop_database, redact, with_database

    name = f"bench_{secrets.token_hex(4)}"
    print(f"server {redact(server_url)}; database {name}")
    asyncio.run(create_database(server_url, name))
    try:
        return asyncio.run(run(with_database(server_url, name)))
    finally:
        asyncio.run(drop_database(server_url, name))
        print(f"dropped database {name}")
