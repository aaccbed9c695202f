"""The rules of a file on a case (`domain.attachments`): its name, and the same file twice."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from domain.attachments import NAME_MAX, Attach, AttachmentAdded, decide_attach, name_fault
from domain.common import Actor, DomainError

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
BODY = Actor(id="Thanh tra tỉnh", role="body", body="THANH_TRA_TINH")
FILE = {"name": "Đơn tố cáo.pdf", "media_type": "application/pdf", "size": 2048, "sha256": "a" * 64}


@pytest.mark.parametrize(("name", "rule"), [
    ("", "attachment.name_empty"), ("   ", "attachment.name_empty"),
    ("x" * (NAME_MAX + 1), "attachment.name_too_long"),
    ("../../etc/passwd", "attachment.name_path"), ("C:\\hồ sơ\\đơn.pdf", "attachment.name_path"),
    ("đơn\u202egpj.pdf", "attachment.name_control"), ("đơn\x07.pdf", "attachment.name_control"),
    ("..", "attachment.name_reserved"), (" đơn.pdf", "attachment.name_reserved"),
    ("đơn.pdf.", "attachment.name_reserved"),
])
def test_a_file_name_that_could_be_misread_is_refused_with_its_rule(name: str, rule: str) -> None:
    fault = name_fault(unicodedata.normalize("NFC", name))
    assert fault is not None and fault[0] == rule


def test_a_vietnamese_name_is_kept_in_nfc() -> None:
    decomposed = unicodedata.normalize("NFD", "Biên bản xác minh (bản ký).pdf")
    command = Attach(**{**FILE, "name": decomposed})
    assert command.name == unicodedata.normalize("NFC", decomposed) and name_fault(command.name) is None


def test_a_bad_name_is_refused_by_the_command_model() -> None:
    with pytest.raises(ValidationError, match=r"attachment\.name_path"):
        Attach(**{**FILE, "name": "a/b.pdf"})


def test_a_file_is_recorded_with_what_the_api_found_of_it_and_refused_twice() -> None:
    [event] = decide_attach([], Attach(**FILE, category="letter"), BODY, NOW)
    assert isinstance(event, AttachmentAdded)
    assert (event.name, event.media_type, event.size, event.sha256, event.category) == (
        "Đơn tố cáo.pdf", "application/pdf", 2048, "a" * 64, "letter")
    assert event.actor == BODY.label and event.occurred_at == NOW
    with pytest.raises(DomainError) as refused:
        decide_attach(["a" * 64], Attach(**FILE), BODY, NOW)
    assert refused.value.rule == "attachment.duplicate"


def test_an_encrypted_file_names_its_ciphertext() -> None:
    with pytest.raises(DomainError) as refused:
        decide_attach([], Attach(**FILE, encrypted=True), BODY, NOW)
    assert refused.value.rule == "attachment.stored"
