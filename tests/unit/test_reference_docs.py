"""The project's documentation stands on its own: the legal reference's tables are the data the engine runs on,
and no file of the repository sends a reader to a document outside it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from danvan.reference import BLOCKS, DOCUMENT, ROOT, rendered

#: A document named by its file name in code, data or prose.
DOCUMENT_NAME = re.compile(r"(?<![\w/.-])((?:\.\./|\./)?[\w./-]*\w\.md)\b")
#: Where a tracked file's text may be read as text.
TEXT_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".toml", ".sql", ".html", ".txt", ".cfg", ".ini", ".sh", ""}


def tracked_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout.split()
    return [ROOT / name for name in out if (ROOT / name).is_file()]


def test_the_legal_references_tables_are_rendered_from_the_current_data() -> None:
    text = DOCUMENT.read_text(encoding="utf-8")
    assert rendered(text) == text, "docs/legal-reference.md is out of date: run python -m danvan.reference"
    for name in BLOCKS:
        assert f"<!-- {name} table: start -->" in text


def test_every_deadline_rule_and_body_appears_in_the_legal_reference() -> None:
    from activities.rules import load_bodies, load_deadline_policy

    text = DOCUMENT.read_text(encoding="utf-8")
    missing = [key for key in load_deadline_policy().rules if f"`{key}`" not in text]
    missing += [code for code in load_bodies().codes() if ":" not in code and f"`{code}`" not in text]
    assert not missing, missing


def test_no_file_names_a_document_outside_the_repository() -> None:
    files = tracked_files()
    names = {p.name for p in files if p.suffix == ".md"}
    outside: list[str] = []
    for path in files:
        if path.suffix not in TEXT_SUFFIXES or path.stat().st_size > 2_000_000:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if re.search(r"\.\./shared\b|\bshared/(design|seed)\b", line) and path.name != Path(__file__).name:
                outside.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
            for name in DOCUMENT_NAME.findall(line):
                here = (path.parent / name).resolve()
                if (ROOT / name).is_file() or (here.is_file() and ROOT in here.parents):
                    continue
                if "/" not in name and name in names:
                    continue
                outside.append(f"{path.relative_to(ROOT)}:{number}: {name}")
    assert not outside, "documents named that the repository does not hold:\n" + "\n".join(outside)
