"""Who imports whom: the API makes its Temporal client with `danvan.client`, never by importing the worker (and so
every activity and the worker's wiring)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_api_does_not_import_the_worker() -> None:
    code = "import sys, api.app; print('worker' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=True)
    assert done.stdout.strip() == "False"


def test_every_client_comes_from_one_place() -> None:
    import worker
    from danvan import client

    assert worker.connect is client.connect and worker.project_converter is client.project_converter
