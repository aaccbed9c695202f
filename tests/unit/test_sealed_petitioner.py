"""What a case keeps of a sealed petitioner is enough for its rules: the anonymous-letter rule of Luật Tố cáo
2018 (Điều 25) decides the same on the sealed facts as on the identity, and an intake recorded before those
facts existed keeps its digest and its decisions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.common import content_digest
from domain.petitions.decider import intake_digest, same_petition
from domain.petitions.model import Petitioner, PetitionIntake

IDENTITIES = [
    Petitioner(),
    Petitioner(name="Nguyễn Văn Ẩn"),
    Petitioner(address="Xã Nam Hồng"),
    Petitioner(name="Nguyễn Văn Ẩn", address="Xã Nam Hồng"),
    Petitioner(name="Nguyễn Văn Ẩn", phone="0912000111"),
    Petitioner(name="Nguyễn Văn Ẩn", id_number="001190000111"),
    Petitioner(name="Nguyễn Văn Ẩn", email="an@thu.vn"),
    Petitioner(phone="0912000111", id_number="001190000111", count=3),
]


@pytest.mark.parametrize("given", IDENTITIES, ids=lambda p: ",".join(k for k, v in p.model_dump().items() if v))
def test_a_sealed_petitioner_is_anonymous_exactly_when_the_identity_it_seals_was(given: Petitioner) -> None:
    sealed = given.sealed("sealed-0123456789abcdef01234567")
    assert sealed.anonymous == given.anonymous
    assert not sealed.identifying and sealed.count == given.count


def test_a_petitioner_sealed_before_the_facts_were_kept_is_not_anonymous_as_before() -> None:
    assert Petitioner(ref="sealed-0001").anonymous is False


def test_the_digest_of_an_intake_recorded_before_the_sealed_facts_is_unchanged() -> None:
    intake = PetitionIntake(source="s", external_ref="r", kind="complaint",
                            received_at=datetime(2026, 1, 2, tzinfo=UTC), subject="Đơn", content="Nội dung",
                            petitioner=Petitioner(name="Trần Văn Bình"))
    before = intake.model_dump(mode="json")
    for key in ("named", "traceable"):
        del before["petitioner"][key]
    assert intake_digest(intake) == content_digest(before)
    sealed = intake.model_copy(update={"petitioner": intake.petitioner.sealed("sealed-x")})
    assert intake_digest(sealed) != intake_digest(intake)
    assert intake_digest(sealed) == intake_digest(sealed.model_copy())


def intake_of(petitioner: Petitioner, subject: str = "Đơn") -> PetitionIntake:
    return PetitionIntake(source="s", external_ref="r", kind="denunciation", subject=subject, content="Nội dung",
                          received_at=datetime(2026, 1, 2, tzinfo=UTC), petitioner=petitioner)


def test_a_resubmission_matches_a_case_recorded_before_the_sealed_facts_were_kept() -> None:
    person = Petitioner(name="Lê Văn Tố", address="Xã Hồng Phong")
    resent = intake_of(person.sealed("sealed-1"))
    # A denouncer sealed before the facts were kept: the case holds the ref alone.
    old_sealed = intake_of(Petitioner(ref="sealed-1"))
    assert same_petition(old_sealed, intake_digest(old_sealed), resent)
    assert not same_petition(old_sealed, intake_digest(old_sealed), intake_of(person.sealed("sealed-1"), "Khác"))
    assert not same_petition(old_sealed, intake_digest(old_sealed), intake_of(person.sealed("sealed-2")))
    # A petitioner received in clear: compared in its sealed form (the API has compared the person).
    in_clear = intake_of(person)
    assert same_petition(in_clear, intake_digest(in_clear), resent)
    untraceable = intake_of(Petitioner(name="Lê Văn Tố").sealed("sealed-1"))
    assert not same_petition(in_clear, intake_digest(in_clear), untraceable)
    assert not same_petition(in_clear, intake_digest(in_clear), intake_of(person.sealed("sealed-1"), "Khác"))
    # And today's: the digests decide.
    assert same_petition(resent, intake_digest(resent), resent)
    assert not same_petition(resent, intake_digest(resent), intake_of(person))
