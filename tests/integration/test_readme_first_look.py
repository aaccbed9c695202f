"""The README's first look works when pasted: its block is run by bash, as it stands in the README, against a
`danvan up` started as a newcomer starts it (the embedded default), from the repository's root."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.integration.test_up import UpProcess, up_env  # noqa: F401 (the fixture)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"<!-- first look: start -->\n```bash\n(.*?)```\n<!-- first look: end -->", re.S)


def first_look() -> str:
    found = BLOCK.search((ROOT / "README.md").read_text(encoding="utf-8"))
    assert found, "the README has no first-look block between its markers"
    return found.group(1)


def test_the_first_look_block_runs_as_pasted(up_env: tuple[Path, dict[str, str]]) -> None:  # noqa: F811
    home, env = up_env
    script = first_look()
    assert "Idempotency-Key: $(" in script  # a fresh key per command, not a fixed one
    up = UpProcess(home, env)
    try:
        up.wait_up()
        # Twice: a second paste must work as well as the first (a fresh reference, fresh keys).
        runs = [subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=ROOT, env=env, capture_output=True,
                               text=True, timeout=180) for _ in range(2)]
    finally:
        up.interrupt()
    for run in runs:
        assert run.returncode == 0, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"
        out = run.stdout
        case = re.search(r"^case (pet-\S+)$", out, re.M)
        assert case, out
        assert "['Classified'] classified" in out and "accepted" in out, out
        # The history the last line prints: the case's events in order, its chain intact.
        assert f"{case.group(1)}: " in out and "PetitionReceived" in out and "AcceptanceDecided" in out, out
        assert "DeadlineBreached" not in out, out  # received now: nothing is late yet
    assert runs[0].stdout.split("\n", 1)[0] != runs[1].stdout.split("\n", 1)[0]  # two cases
