"""The catalogue: every string in both languages, Vietnamese in NFC with its diacritics, every key the templates
use present, the same placeholders in both languages."""

from __future__ import annotations

import re
import string
import unicodedata
from pathlib import Path

from api.console.i18n import LABELS, MESSAGES, Translator
from api.console.nav import NAV

TEMPLATES = Path(__file__).resolve().parents[2] / "api" / "console" / "templates"
CODE = Path(__file__).resolve().parents[2] / "api" / "console"


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def all_pairs() -> list[tuple[str, tuple[str, str]]]:
    return [*MESSAGES.items(), *((f"{group}:{code}", pair) for group, items in LABELS.items()
                                 for code, pair in items.items())]


def test_each_string_is_in_both_languages_nfc_with_the_same_placeholders() -> None:
    problems = []
    for key, (vietnamese, english) in all_pairs():
        if not vietnamese.strip() or not english.strip():
            problems.append(f"{key}: empty")
        if not unicodedata.is_normalized("NFC", vietnamese):
            problems.append(f"{key}: the Vietnamese text is not NFC")
        if placeholders(vietnamese) != placeholders(english):
            problems.append(f"{key}: placeholders differ")
    assert problems == []
    assert len(all_pairs()) > 300


def test_the_vietnamese_catalogue_is_written_with_its_diacritics() -> None:
    vietnamese = " ".join(v for _, (v, _) in all_pairs())
    assert sum(1 for ch in vietnamese if ord(ch) > 127) > 500
    for word in ("Đăng nhập", "Hồ sơ", "Thời hạn", "Căn cứ", "Quá hạn", "Báo cáo định kỳ", "Tố cáo"):
        assert word in vietnamese


def test_every_key_the_templates_and_pages_use_is_in_the_catalogue() -> None:
    namespaces = "|".join(sorted({key.split(".")[0] for key in MESSAGES}))
    literal = re.compile(rf"""["']((?:{namespaces})\.[a-z0-9_.]+)["']""")
    used: set[str] = set()
    for path in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r"""\bt\(\s*["']([a-z_]+(?:\.[a-z0-9_]+)+)["']""", path.read_text(encoding="utf-8")))
    for path in CODE.glob("*.py"):
        if path.name != "i18n.py":
            used |= {key for key in literal.findall(path.read_text(encoding="utf-8")) if not key.endswith(".html")}
    used |= {item.label for item in NAV}
    # Keys the templates build from parts.
    used |= {f"deadline.state.{s}" for s in ("pending", "on_time", "late", "cancelled")}
    used |= {f"plan.report.{s}" for s in ("submitted", "submitted_late", "open")}
    used |= {f"counts.{s}" for s in ("by_status", "by_kind", "by_lead_body", "by_district")}
    used |= {f"identity.{s}" for s in ("name", "address", "phone", "email", "id_number")}
    used |= {f"reports.col.{s}" for s in ("received", "accepted", "resolved", "on_time", "late")}
    used |= {f"error.title.{s}" for s in (400, 403, 404, 405, 409, 410, 413, 415, 422, 500, 503)}
    used |= {f"stalled.{part}.{s}" for part in ("do", "help") for s in ("retry", "reset", "nudge", "reassign",
                                                                        "replay", "pause", "checkpoint",
                                                                        "retry_subscription")}
    used |= {f"stalled.field.{s}" for s in ("reason", "body", "to_event_id", "limit", "cursor")}
    used |= {f"stalled.problem.{s}" for s in ("reason_short", "reason_long", "body_missing", "body_long", "event_id",
                                              "limit", "cursor")}
    used |= {f"stalled.subject.{s}" for s in ("subscription", "checkpoint")}
    used |= {f"queue.part.{s}" for s in ("lead", "coordinating")}
    used |= {f"form.error.{s}" for s in ("missing", "date_format", "date_invalid", "number_format", "pairs_format",
                                         "choice_invalid", "date_out_of_range", "other")}
    missing = sorted(key for key in used if key not in MESSAGES)
    assert missing == []
    # Every stall reason, remedy and subscription status the queue and the pages show has its label.
    from typing import get_args

    from ops.stalled import REMEDIES, Remedy, StallReason

    assert set(get_args(StallReason)) == set(REMEDIES) <= set(LABELS["stall_reason"])
    assert set(get_args(Remedy)) <= set(LABELS["remedy"])
    assert {"active", "paused", "failing"} <= set(LABELS["sub_status"])
    assert len(used) > 150


def test_a_missing_key_or_code_is_shown_as_itself() -> None:
    t = Translator("en")
    assert t("no.such.key") == "no.such.key"
    assert t.label("status", "a_new_status") == "a_new_status"
    assert t.label("kind", "complaint") == "Complaint"
    assert Translator("vi").label("kind", "denunciation") == "Tố cáo"
    assert Translator("vi")("case.title", case_id="<b>") == "Hồ sơ <b>"  # escaping is the template's job
