"""What the console's browser tests share: a headless Chromium (Debian's `/usr/bin/chromium`, driven by Playwright)
and where their screenshots go. The fixtures (`base_url`: the test app over real HTTP; `browser`) are in
`conftest.py`; a test module that uses them sets `pytestmark` from here, so that it is skipped, saying why, when
Chromium or the Playwright package is missing (`.ci/install-system-deps` installs Chromium; `pip install -e
'.[dev]'` installs Playwright; no browser is ever downloaded)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("DANVAN_CHROMIUM", "/usr/bin/chromium"))
#: Screenshots and downloads of the browser tests (ignored by git).
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "console"
#: What Debian's Chromium needs to run headless as root in a container, and nothing that reaches the network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("playwright") is None,
                       reason="the playwright package is not installed (pip install -e '.[dev]')"),
    pytest.mark.skipif(not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)),
                       reason=f"{CHROMIUM} is missing: run `bash .ci/install-system-deps` as root (it installs "
                              "Debian's chromium)"),
]
