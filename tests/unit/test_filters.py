"""The declared filters agree with the domain (`api.filters`)."""

from __future__ import annotations

import re

from api.console.i18n import LABELS
from api.filters import CASE_KINDS, DOMAIN_KINDS, IDEMPOTENCY_KEY_PATTERN, STATUS_PATTERN


def test_the_kind_filter_lists_exactly_the_kinds_of_cases() -> None:
    assert set(CASE_KINDS) == DOMAIN_KINDS


def test_every_status_the_console_names_passes_the_status_pattern() -> None:
    assert LABELS["status"]
    assert all(re.fullmatch(STATUS_PATTERN, s) for s in LABELS["status"])


def test_the_idempotency_key_pattern() -> None:
    ok = ["a", "7f1c0b2e-1d0e-4c1a-9d1f-3b2a1c0d9e8f", "KN-0001 accept", "x" * 200, "!~'\"\\%#"]
    bad = ["", " a", "a ", "khóa", "a\tb", "a\x7fb", "x" * 201]
    assert all(re.fullmatch(IDEMPOTENCY_KEY_PATTERN, k) for k in ok)
    assert not any(re.fullmatch(IDEMPOTENCY_KEY_PATTERN, k) for k in bad)


def test_a_database_name_is_checked_before_it_is_written_into_sql() -> None:
    import pytest

    from danvan.postgres import _database_name

    assert _database_name("danvan_test_0123abcd") == "danvan_test_0123abcd"
    for bad in ('x"; DROP DATABASE postgres; --', "Upper", "", "a" * 64, "tên"):
        with pytest.raises(ValueError):
            _database_name(bad)
