"""The tables of `docs/legal-reference.md` that come from data, rendered from that data.

The legal reference holds prose written by people and three tables that must never drift from what the engine
runs on: every deadline rule (`policy/deadlines.yaml`), every body with its dates and successor
(`policy/bodies.yaml`), and who may send each command (`domain.authority`). Each table stands in the document
between two marker comments; `python -m danvan.reference` rewrites them from the data, and
`python -m danvan.reference --check` (run by `tests/unit/test_reference_docs.py`) fails when the document and
the data differ.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from activities.rules import load_bodies, load_rule_sets
from domain.authority import render_markdown as render_authority
from domain.bodies import Body
from domain.deadlines import DeadlinePolicy, RuleSets

ROOT = Path(__file__).resolve().parents[1]
DOCUMENT = ROOT / "docs" / "legal-reference.md"

MARKS = {"verified": "✅", "partial": "⚠️", "unverified": "❌"}


def _cell(text: str) -> str:
    """`text` fit for one Markdown table cell: one line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def _changes(before: DeadlinePolicy, after: DeadlinePolicy) -> str:
    """The rules (and suspension rules) a set changes from the set before it."""
    keys = [k for k, r in after.rules.items() if before.rules.get(k) != r]
    keys += [f"suspension.{k}" for k, r in after.suspension.items() if before.suspension.get(k) != r]
    return ", ".join(f"`{k}`" for k in keys) or "—"


def render_rule_sets(sets: RuleSets) -> list[str]:
    """The dated sets of the policy file: each case is counted under the set in force on its day of receipt."""
    lines = [
        "The rule sets of the policy file. A case is counted under the set in force (not a draft) on the day it was",
        "received, recorded with its digest; a set published later never changes it.",
        "",
        "| version | applies to cases received | status | texts | digest | changes from the set before | note |",
        "|---|---|---|---|---|---|---|",
    ]
    for index, rule_set in enumerate(sets.sets):
        since = f"from {rule_set.valid_from.isoformat()}" if rule_set.valid_from else "from the beginning"
        changes = _changes(sets.sets[index - 1], rule_set) if index else "—"
        lines.append("| " + " | ".join([
            f"`{rule_set.version}`", since, rule_set.status.replace("_", " "), _cell(rule_set.title or "—"),
            f"`{rule_set.digest[:12]}`", changes, _cell(rule_set.note or "—"),
        ]) + " |")
    return lines


def render_deadlines() -> str:
    """The rule sets, then every deadline rule of the latest set in force, in the policy's order: what it is for,
    the period and its unit, the longer variants, extensions, whether it is statutory, its basis and mark, and
    what is still to confirm."""
    sets = load_rule_sets()
    policy = sets.latest
    lines = [
        *render_rule_sets(sets),
        "",
        f"The rules of set {policy.version}, in force today. A calendar period that ends on a day off ends on the "
        "next working day.",
        "",
        "| rule | what for | period | variants | extensions | statutory | basis | mark | to note or confirm |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key, rule in policy.rules.items():
        unit = "working days" if rule.unit == "working" else "days"
        variants = ", ".join(f"{name} {amount}" for name, amount in rule.variants.items()) or "—"
        extensions = (f"{rule.max_extensions} × {rule.extension_amount} {unit}"
                      if rule.max_extensions and rule.extension_amount else "—")
        if rule.extension_limits and rule.extension_amount:
            limits = ", ".join(f"{name.replace('_', ' ')} {rule.extensions_allowed(name)}"
                               for name in ("ordinary", "complex", "especially_complex"))
            extensions = f"{limits}; each ≤ {rule.extension_amount} {unit}, from the period's start"
        lines.append("| " + " | ".join([
            f"`{key}`", _cell(f"{rule.title_vi} ({rule.title_en})"), f"{rule.amount} {unit}", variants,
            extensions, "yes" if rule.statutory else "no (policy)", _cell(rule.legal_basis or "—"),
            MARKS[rule.mark], _cell(rule.note or "—"),
        ]) + " |")
    if policy.suspension:
        lines += [
            "",
            "Whether the time a case is suspended counts in its periods (`suspension`): when it does not, every",
            "running period stops on the day of the suspension and what remained of it runs from the day of the",
            "resumption.",
            "",
            "| kind | suspension time counts | statutory | basis | mark | to note or confirm |",
            "|---|---|---|---|---|---|",
        ]
        for kind, suspension in policy.suspension.items():
            lines.append("| " + " | ".join([
                f"`{kind}`", "yes (the periods run on)" if suspension.counts else "no (the clock stops)",
                "yes" if suspension.statutory else "no (policy)", _cell(suspension.legal_basis or "—"),
                MARKS[suspension.mark], _cell(suspension.note or "—"),
            ]) + " |")
    return "\n".join(lines)


def _dates(body: Body) -> str:
    start = body.valid_from.isoformat() if body.valid_from else "…"
    end = body.valid_to.isoformat() if body.valid_to else "…"
    return "always" if start == end == "…" else f"{start} to {end}"


def render_bodies() -> str:
    """Every body of the registry but the district instances (each family stands for them), with its side,
    level, parent, the days it exists, its successor and notes."""
    registry = load_bodies()
    lines = [
        "| code | name | side | level | parent | in force | successor | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for code in registry.codes():
        body = registry.get(code)
        if ":" in code:
            continue  # a district instance of a family
        lines.append("| " + " | ".join([
            f"`{code}`", _cell(f"{body.name_vi} ({body.name_en})"), body.side, body.level,
            f"`{body.parent}`" if body.parent else "—", _dates(body),
            f"`{body.successor}`" if body.successor else "—", _cell(body.note or "—"),
        ]) + " |")
    return "\n".join(lines)


#: The generated blocks, by the name their markers carry.
BLOCKS: dict[str, Callable[[], str]] = {
    "deadlines": render_deadlines,
    "bodies": render_bodies,
    "authority": render_authority,
}


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- {name} table: start -->)(.*?)(<!-- {name} table: end -->)", re.S)


def rendered(text: str) -> str:
    """`text` with every generated block rendered anew from the data."""
    for name, render in BLOCKS.items():
        pattern = _pattern(name)
        if not pattern.search(text):
            raise ValueError(f"{DOCUMENT.name}: the markers of the {name} table are missing")
        block = render().rstrip("\n")

        def put(match: re.Match[str], block: str = block) -> str:
            return match.group(1) + "\n\n" + block + "\n\n" + match.group(3)

        text = pattern.sub(put, text)
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m danvan.reference", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only say whether the document is current")
    args = parser.parse_args(argv)
    text = DOCUMENT.read_text(encoding="utf-8")
    new = rendered(text)
    if args.check:
        if new != text:
            print(f"{DOCUMENT.relative_to(ROOT)} is out of date: run python -m danvan.reference", file=sys.stderr)
            return 1
        return 0
    if new != text:
        DOCUMENT.write_text(new, encoding="utf-8")
        print(f"{DOCUMENT.relative_to(ROOT)}: tables rewritten")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
