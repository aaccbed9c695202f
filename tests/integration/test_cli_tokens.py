"""Tokens for bodies: `danvan token create` issues a `body` token only for a body in force, and `danvan up`'s own
`body` token acts for the commission as it is today (its successor since the 2025 merger), and says which.

Real PostgreSQL; the CLI's `main` is called in-process, as `danvan` runs it.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from activities.rules import load_bodies
from api.tokens import authenticate, ensure_token, hash_token
from danvan.settings import Settings
from danvan.up import Stack, commission_body, describe_body, load_tokens
from eventstore import create_pool
from tests.cli import Cli


def test_the_commission_in_force_is_the_merged_commission_after_2025_03_01() -> None:
    registry = load_bodies()
    assert commission_body(registry, date(2025, 2, 28)).code == "BDV_TU"
    today = commission_body(registry, date(2026, 1, 5))
    assert today.code == "BTGDV_TU" and today.is_effective(date(2026, 1, 5))
    assert describe_body(today) == "BTGDV_TU, Ban Tuyên giáo và Dân vận Tỉnh ủy, in force since 2025-03-01"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("NO_SUCH_BODY", "unknown body 'NO_SUCH_BODY'"),
        ("BDV_TU", "is not in force on"),  # merged on 2025-03-01
        ("UBND_HUYEN:nam-sach", "is not in force on"),  # the district tier ended on 2025-07-01
        ("UBND_HUYEN", "is a family of district bodies"),
        ("CTXH_ALL", "is a group standing for"),
    ],
)
def test_token_create_refuses_a_body_unknown_or_not_in_force(cli: Cli, body: str, reason: str) -> None:
    status, out, err = cli("token", "create", "--role", "body", "--body", body)
    assert (status, out) == (1, ""), err
    assert err.startswith("danvan token: --body: ") and reason in err, err
    if body == "BDV_TU":
        assert "2025-03-01" in err and "its successor is BTGDV_TU" in err


def test_token_create_flags_used_wrongly_are_bad_usage_naming_the_flag(cli: Cli) -> None:
    status, out, err = cli("token", "create", "--role", "body")
    assert (status, out) == (2, "") and "--body" in err and "usage: danvan token create" in err
    status, out, err = cli("token", "create", "--role", "supervisor", "--body", "UBND_TINH")
    assert (status, out) == (2, "") and "--body" in err
    status, out, err = cli("token", "create", "--body", "UBND_TINH")
    assert (status, out) == (2, "") and "--role" in err


async def test_token_create_issues_a_token_for_a_body_in_force(cli: Cli, database_url: str) -> None:
    status, out, err = await cli.run_async("token", "create", "--role", "body", "--body", "UBND_TINH",
                                           "--label", "Văn phòng UBND tỉnh")
    assert status == 0, err
    token = out.strip()
    pool = await create_pool(database_url, max_size=1)
    try:
        principal = await authenticate(pool, token)
    finally:
        await pool.close()
    assert principal is not None and (principal.role, principal.body_id, principal.label) == (
        "body", "UBND_TINH", "Văn phòng UBND tỉnh")


async def test_up_body_token_acts_for_the_commission_in_force_and_replaces_an_earlier_one(
    database_url: str, tmp_path: Path
) -> None:
    """An installation whose earlier start made its `body` token for BDV_TU (abolished on 2025-03-01): the next
    start revokes that token, makes one for BTGDV_TU, rewrites tokens.json and says so; the banner says which
    body the token acts for."""
    settings = Settings.from_env({"DANVAN_HOME": str(tmp_path / "home"), "DATABASE_URL": database_url})
    tokens = load_tokens(settings.tokens_file)
    old = tokens["body"]
    pool = await create_pool(database_url, max_size=1)
    try:
        await ensure_token(pool, old, "body", "BDV_TU", "local body (BDV_TU)")
        said: list[str] = []
        stack = Stack(settings, said.append)
        (settings.home / "logs").mkdir(parents=True)
        try:
            kept = await stack.prepare_database()
            banner = stack.banner(kept)
        finally:
            stack.stop()
        new = kept["body"]
        assert new != old and json.loads(settings.tokens_file.read_text(encoding="utf-8")) == kept
        assert {role: kept[role] for role in kept if role != "body"} == {
            role: tokens[role] for role in tokens if role != "body"}
        assert await authenticate(pool, old) is None  # revoked
        principal = await authenticate(pool, new)
        assert principal is not None and principal.body_id == "BTGDV_TU"
        assert any("acted for BDV_TU" in line and "BTGDV_TU" in line for line in said), said
        body_line = next(line for line in banner.splitlines() if line.strip().startswith("body "))
        assert new in body_line and "acts for BTGDV_TU, Ban Tuyên giáo và Dân vận Tỉnh ủy, in force since " \
            "2025-03-01" in body_line

        # The next start keeps the new token as it is.
        again = Stack(settings, said.append)
        try:
            assert (await again.prepare_database())["body"] == new
        finally:
            again.stop()
        row = await pool.fetchrow("SELECT body_id, revoked_at FROM api_tokens WHERE token_hash = $1",
                                  hash_token(new))
        assert row is not None and row["body_id"] == "BTGDV_TU" and row["revoked_at"] is None
    finally:
        await pool.close()

