"""The `danvan` command prints only its answer: on the embedded PostgreSQL, which it initialises and starts on
the way, nothing but the answer reaches standard output and nothing at all standard error (no library's INFO
lines, no runtime-directory warning). A refusal is one plain line on standard error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def danvan(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "XDG_RUNTIME_DIR", "DANVAN_LOG_LEVEL") and not k.startswith("OTEL_")}
    env["DANVAN_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "danvan.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=180, check=False)


def test_one_shot_commands_print_only_their_answer(tmp_path: Path) -> None:
    home = tmp_path / "home"
    migrated = danvan(home, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert migrated.stderr == ""
    assert migrated.stdout.startswith("applied: 0001_event_store")
    assert len(migrated.stdout.splitlines()) == 1

    again = danvan(home, "migrate")
    assert (again.returncode, again.stderr) == (0, "")
    assert len(again.stdout.splitlines()) == 1

    missing = danvan(home, "history", "no-such-case", "--json")
    assert missing.returncode == 1
    assert missing.stdout == ""
    assert len(missing.stderr.splitlines()) == 1, missing.stderr
    assert missing.stderr.startswith("danvan history:"), missing.stderr
