"""One installation, one secret: a process started with another secret than the one its database recorded
refuses to start, naming both fingerprints, instead of writing payloads nobody else can open (an API) or
retrying for ever on payloads it cannot open (a worker).

Real PostgreSQL; the CLI is run as a subprocess, as an operator runs it.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest

from api.app import create_app
from danvan.keys import SecretMismatch, check_installation_secret, fingerprint
from danvan.settings import Settings
from tests.api.support import running
from tests.conftest import migrated_database
from worker import run_worker

ROOT = Path(__file__).resolve().parents[2]


def env_secret(secret: bytes) -> dict[str, str]:
    return {"DANVAN_SECRET_KEY": base64.b64encode(secret).decode()}


@pytest.fixture
async def fresh_url(new_database: Callable[[], Awaitable[str]]) -> str:
    return await migrated_database(new_database)


async def test_the_first_secret_is_recorded_the_same_is_accepted_and_another_refused(fresh_url: str) -> None:
    ours, theirs = secrets.token_bytes(32), secrets.token_bytes(32)
    conn = await asyncpg.connect(fresh_url)
    try:
        assert await check_installation_secret(conn, ours) == fingerprint(ours)
        assert await check_installation_secret(conn, ours) == fingerprint(ours)
        with pytest.raises(SecretMismatch) as refused:
            await check_installation_secret(conn, theirs)
        assert fingerprint(theirs) in str(refused.value) and fingerprint(ours) in str(refused.value)
        # Only the public fingerprint is kept: no byte of the secret, nor of a key derived from it for use.
        stored = await conn.fetch("SELECT * FROM installation_secret")
        assert [(r["purpose"], r["key_id"]) for r in stored] == [("secret", fingerprint(ours))]
    finally:
        await conn.close()


async def test_two_first_starts_with_different_secrets_leave_one_recorded_and_refuse_the_other(
    fresh_url: str,
) -> None:
    candidates = [secrets.token_bytes(32) for _ in range(6)]
    conns = [await asyncpg.connect(fresh_url) for _ in candidates]
    try:
        checks = (check_installation_secret(c, s) for c, s in zip(conns, candidates, strict=True))
        outcomes = await asyncio.gather(*checks, return_exceptions=True)
    finally:
        for c in conns:
            await c.close()
    won = [o for o in outcomes if isinstance(o, str)]
    assert len(won) == 1, outcomes
    assert all(isinstance(o, SecretMismatch) and won[0] in str(o) for o in outcomes if o not in won), outcomes


async def test_an_api_with_another_secret_does_not_start(fresh_url: str, tmp_path: Path) -> None:
    ours, theirs = secrets.token_bytes(32), secrets.token_bytes(32)
    first = Settings.from_env({"DANVAN_HOME": str(tmp_path / "a"), **env_secret(ours)})
    async with running(create_app(first, fresh_url)) as api:
        assert (await api.get("/healthz")).status_code == 200
    other = Settings.from_env({"DANVAN_HOME": str(tmp_path / "b"), **env_secret(theirs)})
    with pytest.raises(SecretMismatch):
        async with running(create_app(other, fresh_url)):
            pass


async def test_a_worker_with_another_secret_refuses_before_it_polls(fresh_url: str, tmp_path: Path) -> None:
    conn = await asyncpg.connect(fresh_url)
    try:
        await check_installation_secret(conn, secrets.token_bytes(32))
    finally:
        await conn.close()
    # Nothing listens at this Temporal address: the worker must refuse on the secret before it tries to connect.
    settings = Settings.from_env({"DANVAN_HOME": str(tmp_path), "TEMPORAL_ADDRESS": "127.0.0.1:9",
                                  **env_secret(secrets.token_bytes(32))})
    with pytest.raises(SecretMismatch):
        await asyncio.wait_for(run_worker(settings, fresh_url), 30)


async def test_the_cli_with_another_secret_exits_1_naming_both_fingerprints(fresh_url: str, tmp_path: Path) -> None:
    ours, theirs = secrets.token_bytes(32), secrets.token_bytes(32)
    conn = await asyncpg.connect(fresh_url)
    try:
        await check_installation_secret(conn, ours)
    finally:
        await conn.close()

    def danvan(secret: bytes, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "DATABASE_URL": fresh_url, "DANVAN_HOME": str(tmp_path), **env_secret(secret)}
        return subprocess.run([sys.executable, "-m", "danvan.cli", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=120)

    refused = await asyncio.to_thread(danvan, theirs, "verify", "--no-temporal")
    assert refused.returncode == 1, refused
    assert fingerprint(theirs) in refused.stderr and fingerprint(ours) in refused.stderr, refused.stderr
    accepted = await asyncio.to_thread(danvan, ours, "verify", "--no-temporal")
    assert accepted.returncode == 0, accepted.stderr
