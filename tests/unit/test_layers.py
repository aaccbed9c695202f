"""Who imports whom. The domain is pure (no I/O, no service, no other layer of the project); the event store knows
events, streams, the feed and its tables, but nothing of the domain; the API makes its Temporal client with
`danvan.client`, never by importing the worker (and so every activity and the worker's wiring)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT = {"activities", "api", "danvan", "domain", "eventstore", "integrity", "ops", "readside", "workflows",
           "worker", "plan", "policy", "bench", "tests"}

#: For each layer, the project packages its modules may import (their own package included).
ALLOWED = {
    "domain": {"domain"},
    "eventstore": {"eventstore", "danvan"},  # danvan.waits: the bounded waits every pool call honours
}
#: Libraries that do I/O or talk to a service, which the domain must not reach.
NOT_IN_DOMAIN = {"asyncpg", "temporalio", "httpx", "fastapi", "starlette", "socket", "subprocess", "os"}


def imported(path: Path) -> set[str]:
    """The top-level names of every module `path` imports, at any depth of the file (lazy imports included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_a_layer_imports_only_the_layers_below_it(layer: str) -> None:
    wrong = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in sorted((ROOT / layer).rglob("*.py"))
        for name in imported(path) & PROJECT - ALLOWED[layer]
    }
    assert not wrong, sorted(wrong)


def test_the_domain_does_no_io() -> None:
    wrong = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in sorted((ROOT / "domain").rglob("*.py"))
        for name in imported(path) & NOT_IN_DOMAIN
    }
    assert not wrong, sorted(wrong)


def test_the_api_does_not_import_the_worker() -> None:
    code = "import sys, api.app; print('worker' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=True)
    assert done.stdout.strip() == "False"


def test_every_client_comes_from_one_place() -> None:
    import worker
    from danvan import client

    assert worker.connect is client.connect and worker.project_converter is client.project_converter
