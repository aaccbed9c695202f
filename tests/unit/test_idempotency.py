"""The digests that tell a repeated request from another one under the same key (`domain.idempotency`), and
the case machinery's judgement of a key applied before the digests were kept."""

from __future__ import annotations

import unicodedata
from typing import Any

import pytest
from pydantic import TypeAdapter

from domain.common import Actor, DomainError
from domain.idempotency import (
    RULE,
    SeenCommand,
    command_digest,
    fingerprint,
    from_metadata,
    key_reused,
    metadata,
    sender_digest,
    update_id,
)
from domain.petitions.commands import PetitionCommand
from domain.repairs import RecordRepair
from workflows.case import CaseMachine

COMMANDS: TypeAdapter[Any] = TypeAdapter(PetitionCommand)
OFFICER = Actor(id="cán bộ Hoà", role="body", body="UBND_TINH")


def cmd(payload: dict[str, Any]) -> Any:
    return COMMANDS.validate_python(payload)


def test_the_same_command_has_one_digest_whatever_its_spelling() -> None:
    nfc = cmd({"type": "accept", "decision_no": "12/QĐ-UBND"})
    nfd = cmd({"decision_no": unicodedata.normalize("NFD", "12/QĐ-UBND"), "type": "accept"})
    assert command_digest(nfc) == command_digest(nfd)
    assert command_digest(nfc) != command_digest(cmd({"type": "accept", "decision_no": "13/QĐ-UBND"}))


def test_commands_of_different_types_with_the_same_fields_differ() -> None:
    assert command_digest(cmd({"type": "suspend", "reason": "Chờ kết quả giám định"})) != command_digest(
        cmd({"type": "withdraw", "reason": "Chờ kết quả giám định"}))


def test_a_repairs_detail_is_not_part_of_its_digest_but_its_reason_is() -> None:
    one = RecordRepair(action="retry", reason="Bước lưu sự kiện lỗi mãi", detail={"reset": ["1"]})
    other = RecordRepair(action="retry", reason="Bước lưu sự kiện lỗi mãi", detail={"reset": []})
    assert command_digest(one) == command_digest(other)
    assert command_digest(one) != command_digest(RecordRepair(action="retry", reason="Một lý do khác hẳn"))


def test_the_sender_is_its_id_role_and_body() -> None:
    assert sender_digest(OFFICER) == sender_digest(Actor(id="cán bộ Hoà", role="body", body="UBND_TINH"))
    assert sender_digest(OFFICER) != sender_digest(Actor(id="cán bộ Hoà", role="body", body="SO_NOI_VU"))
    assert sender_digest(OFFICER) != sender_digest(Actor(id="cán bộ Bình", role="body", body="UBND_TINH"))


def test_the_refusal_says_what_differs() -> None:
    first = fingerprint(cmd({"type": "close"}), OFFICER)
    assert key_reused("k", first, first) is None
    assert key_reused("k", None, first) is None  # a key applied before digests were kept: a duplicate
    other_cmd = fingerprint(cmd({"type": "archive", "archive_ref": "HS-1"}), OFFICER)
    other_sender = fingerprint(cmd({"type": "close"}), Actor(id="x", role="body", body="UBND_TINH"))
    both = fingerprint(cmd({"type": "archive", "archive_ref": "HS-1"}), Actor(id="x", role="body"))
    messages = {name: key_reused("k", first, now) for name, now in
                (("command", other_cmd), ("sender", other_sender), ("both", both))}
    assert all(isinstance(m, DomainError) and m.rule == RULE for m in messages.values())
    assert "(the command differs)" in str(messages["command"])
    assert "(the sender differs)" in str(messages["sender"])
    assert "(the command and the sender differ)" in str(messages["both"])


def test_metadata_round_trips_and_old_metadata_has_no_digests() -> None:
    seen = fingerprint(cmd({"type": "close"}), OFFICER)
    assert from_metadata(metadata("k", seen)) == seen
    assert from_metadata({"command_id": "k"}) is None


def test_the_update_id_names_the_key_and_the_request() -> None:
    close = cmd({"type": "close"})
    assert update_id("cmd-", "k", close, OFFICER) == update_id("cmd-", "k", close, OFFICER)
    assert update_id("cmd-", "k", close, OFFICER).startswith("cmd-k#")
    assert update_id("cmd-", "k", close, OFFICER) != update_id("cmd-", "k", cmd({"type": "archive",
                                                                                 "archive_ref": "HS-1"}), OFFICER)


class Machine(CaseMachine[Any]):
    """The shared machinery with nothing of a case kind: enough for the validator's judgement of a key."""

    def decide(self, state: Any, command: Any, actor: Actor, now: Any) -> list[Any]:
        raise AssertionError("a known key is not decided again")


def test_a_key_applied_before_digests_were_kept_answers_as_a_duplicate_whatever_the_request() -> None:
    machine = Machine()
    machine.setup(state=object(), seen={"old-key": 4})
    for request in (cmd({"type": "close"}), cmd({"type": "archive", "archive_ref": "HS-1"})):
        machine.validate(request, OFFICER, "old-key", internal=frozenset(), opening="case.opening")


def test_a_key_with_digests_refuses_another_request_in_the_validator() -> None:
    machine = Machine()
    close = cmd({"type": "close"})
    machine.setup(state=object(), seen={"key": 4}, seen_digests={"key": fingerprint(close, OFFICER)})
    machine.validate(close, OFFICER, "key", internal=frozenset(), opening="case.opening")
    with pytest.raises(Exception) as refused:
        machine.validate(cmd({"type": "archive", "archive_ref": "HS-1"}), OFFICER, "key", internal=frozenset(),
                         opening="case.opening")
    assert getattr(refused.value, "type", None) == RULE


def test_digests_of_keys_no_longer_kept_are_dropped_with_them() -> None:
    machine = Machine()
    machine.setup(state=object(), seen={"a": 1}, seen_digests={"a": SeenCommand(command="c", sender="s"),
                                                              "gone": SeenCommand(command="c", sender="s")})
    assert set(machine.seen_digests) == {"a"}
