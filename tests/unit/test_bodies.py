"""The dated registry of bodies, the default routing of petitions, and their policy files (docs/legal-reference.md
§0, §2, §6)."""

from __future__ import annotations

import asyncio
import json
import re
import unicodedata
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import ActivityEnvironment

from activities.rules import (
    BODIES_FILE,
    ROUTING_FILE,
    CaseRulesRequest,
    RulesActivities,
    RulesFileError,
    load_bodies,
    load_routing,
)
from domain.bodies import (
    BODY_CODE_PATTERN,
    BodyNotEffective,
    BodyRegistry,
    NoRoute,
    RoutingTable,
    RoutingTableError,
    UnknownBody,
    UnknownDistrict,
)
from domain.deadlines import CaseRules

BEFORE_MERGER = date(2025, 2, 28)
MERGER = date(2025, 3, 1)
LAST_DISTRICT_DAY = date(2025, 6, 30)
NO_DISTRICTS = date(2025, 7, 1)

# The codes of docs/legal-reference.md §6 (and §5's plan tasks) that must exist.
GLOSSARY = {
    "TINH_UY",
    "BDV_TU",
    "PHONG_DTHTH",
    "BDV_TW",
    "BTG_TU",
    "BTC_TU",
    "HUYEN_UY",
    "BDV_HUYEN",
    "DANG_UY_TRUC_THUOC",
    "UBMTTQ_TINH",
    "HND",
    "HLHPN",
    "TINH_DOAN",
    "HCCB",
    "LDLD",
    "CTXH_ALL",
    "HOI_QUAN_CHUNG",
    "HDND_TINH",
    "UBND_TINH",
    "UBND_CAP_DUOI",
    "SO_BAN_NGANH",
    "SO_NOI_VU",
    "CQ_TON_GIAO",
    "CQ_DAN_TOC",
    "TT_HCC",
    "BP_MOT_CUA",
    "THANH_TRA_TINH",
    "BAN_TCD",
    "DOAN_DBQH",
    "BCD_QCDC",
    "BCD_TON_GIAO",
    "BCHQS_TINH",
    "CA_TINH",
    "DON_VI_DUNG_CHAN",
    "TRUONG_CHINH_TRI",
    "SO_TAI_NGUYEN",
    "BTGDV_TU",
}
DISTRICTS = {
    "hai-duong": "Hải Dương",
    "chi-linh": "Chí Linh",
    "kinh-mon": "Kinh Môn",
    "nam-sach": "Nam Sách",
    "kim-thanh": "Kim Thành",
    "thanh-ha": "Thanh Hà",
    "cam-giang": "Cẩm Giàng",
    "binh-giang": "Bình Giang",
    "gia-loc": "Gia Lộc",
    "tu-ky": "Tứ Kỳ",
    "ninh-giang": "Ninh Giang",
    "thanh-mien": "Thanh Miện",
}


@pytest.fixture(scope="module")
def registry() -> BodyRegistry:
    return load_bodies()


@pytest.fixture(scope="module")
def routing(registry: BodyRegistry) -> RoutingTable:
    return load_routing(registry=registry)


def body(code: str, **fields: Any) -> dict[str, Any]:
    return {"code": code, "name_vi": f"Cơ quan {code}", "name_en": code, "side": "state", "level": "province", **fields}


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- the shipped files ---


def test_the_shipped_bodies_file_validates_and_has_every_code_of_the_glossary(registry: BodyRegistry) -> None:
    assert GLOSSARY <= set(registry.codes())
    assert registry.version


def test_every_code_fits_the_command_pattern(registry: BodyRegistry) -> None:
    for code in registry.codes():
        assert re.match(BODY_CODE_PATTERN, code), code


def test_every_vietnamese_name_is_nfc_and_not_empty(registry: BodyRegistry) -> None:
    assert unicodedata.is_normalized("NFC", BODIES_FILE.read_text(encoding="utf-8"))
    assert unicodedata.is_normalized("NFC", ROUTING_FILE.read_text(encoding="utf-8"))
    for code in registry.codes():
        found = registry.get(code)
        assert found.name_vi.strip() and found.name_en.strip(), code
        assert unicodedata.is_normalized("NFC", found.name_vi), code
        assert unicodedata.is_normalized("NFC", found.note), code


def test_the_province_has_its_twelve_district_level_units_spelt_with_diacritics(registry: BodyRegistry) -> None:
    assert {slug: registry.district(slug).name for slug in registry.district_slugs()} == DISTRICTS
    assert registry.get("UBND_HUYEN:nam-sach").name_vi == "Ủy ban nhân dân huyện Nam Sách"
    assert registry.get("BDV_HUYEN:kinh-mon").name_vi == "Ban Dân vận Thị ủy Kinh Môn"
    assert registry.get("HUYEN_UY:chi-linh").name_vi == "Thành ủy Chí Linh"
    assert registry.get("THANH_TRA_HUYEN:tu-ky").name_vi == "Thanh tra huyện Tứ Kỳ"
    assert registry.get("UBND_HUYEN:thanh-mien").name_en == "People's Committee of Thanh Miện district"


def test_every_district_family_has_an_instance_per_district_ending_with_the_district_tier(
    registry: BodyRegistry,
) -> None:
    for family in ("HUYEN_UY", "BDV_HUYEN", "UBND_HUYEN", "HDND_HUYEN", "THANH_TRA_HUYEN", "UBMTTQ_HUYEN"):
        instances = registry.instances(family)
        assert [i.code.split(":")[1] for i in instances] == list(DISTRICTS), family
        for instance in [registry.get(family), *instances]:
            assert instance.level == "district"
            assert instance.valid_to == NO_DISTRICTS
            assert registry.resolve_family(instance.code) == family


def test_an_instance_belongs_to_the_instance_of_its_parent_family(registry: BodyRegistry) -> None:
    assert registry.get("BDV_HUYEN:nam-sach").parent == "HUYEN_UY:nam-sach"
    assert registry.get("THANH_TRA_HUYEN:gia-loc").parent == "UBND_HUYEN:gia-loc"
    assert registry.get("UBND_HUYEN:gia-loc").parent == "UBND_TINH"


def test_the_shipped_routing_file_validates_against_the_bodies(routing: RoutingTable) -> None:
    assert routing.rules
    for rule in routing.rules:
        assert rule.legal_basis


def test_uncertain_data_is_marked(registry: BodyRegistry, routing: RoutingTable) -> None:
    for code in ("BDV_TU", "BTG_TU", "BTGDV_TU", "SO_TAI_NGUYEN", "TINH_UY", "UBND_TINH"):
        assert "⚠️" in registry.get(code).note, code
    assert "Hải Phòng" in registry.get("TINH_UY").note
    land = [r for r in routing.rules if r.subject_category == "đất đai"]
    assert land and all("⚠️" in r.note for r in land)


# --- effective-dated lookups ---


def test_the_mass_mobilisation_commission_is_merged_on_1_march_2025(registry: BodyRegistry) -> None:
    assert registry.is_effective("BDV_TU", BEFORE_MERGER)
    assert not registry.is_effective("BDV_TU", MERGER)
    assert not registry.is_effective("BTGDV_TU", BEFORE_MERGER)
    assert registry.effective("BTGDV_TU", MERGER).predecessors == ["BDV_TU", "BTG_TU"]
    assert registry.successor_on("BDV_TU", BEFORE_MERGER) == "BDV_TU"
    assert registry.successor_on("BDV_TU", MERGER) == "BTGDV_TU"
    assert registry.successor_on("BTG_TU", date(2026, 1, 1)) == "BTGDV_TU"


def test_a_body_not_in_force_is_refused_with_its_window_and_successor(registry: BodyRegistry) -> None:
    with pytest.raises(BodyNotEffective) as caught:
        registry.effective("BDV_TU", MERGER)
    message = str(caught.value)
    assert "BDV_TU" in message and "2025-03-01" in message and "BTGDV_TU" in message
    assert caught.value.successor == "BTGDV_TU" and caught.value.on == MERGER
    with pytest.raises(BodyNotEffective, match="before the body existed"):
        registry.successor_on("BTGDV_TU", BEFORE_MERGER)


def test_district_bodies_exist_until_30_june_2025_only(registry: BodyRegistry) -> None:
    assert registry.is_effective("UBND_HUYEN:nam-sach", LAST_DISTRICT_DAY)
    assert not registry.is_effective("UBND_HUYEN:nam-sach", NO_DISTRICTS)
    with pytest.raises(BodyNotEffective) as caught:
        registry.successor_on("UBND_HUYEN:nam-sach", NO_DISTRICTS)
    assert "no successor" in str(caught.value)
    assert "Ủy ban nhân dân huyện Nam Sách" in str(caught.value)


def test_a_district_inspectorate_is_succeeded_by_the_provincial_inspectorate(registry: BodyRegistry) -> None:
    assert registry.successor_on("THANH_TRA_HUYEN:tu-ky", LAST_DISTRICT_DAY) == "THANH_TRA_HUYEN:tu-ky"
    assert registry.successor_on("THANH_TRA_HUYEN:tu-ky", NO_DISTRICTS) == "THANH_TRA_TINH"


def test_by_side_lists_only_the_bodies_in_force(registry: BodyRegistry) -> None:
    party_before = {b.code for b in registry.by_side("party", BEFORE_MERGER)}
    party_after = {b.code for b in registry.by_side("party", NO_DISTRICTS)}
    assert {"BDV_TU", "BTG_TU", "HUYEN_UY:nam-sach"} <= party_before
    assert "BTGDV_TU" not in party_before
    assert "BTGDV_TU" in party_after and "BDV_TU" not in party_after
    assert not any(code.startswith(("HUYEN_UY", "BDV_HUYEN")) for code in party_after)
    assert {b.code for b in registry.by_side("armed_forces", NO_DISTRICTS)} == {
        "BCHQS_TINH",
        "CA_TINH",
        "DON_VI_DUNG_CHAN",
    }


def test_an_unknown_body_is_named_and_an_unknown_district_instance_gets_a_hint(registry: BodyRegistry) -> None:
    with pytest.raises(UnknownBody, match="'NOPE'"):
        registry.get("NOPE")
    with pytest.raises(UnknownBody) as caught:
        registry.is_effective("UBND_HUYEN:hai-phong", NO_DISTRICTS)
    assert "UBND_HUYEN:hai-phong" in str(caught.value) and "nam-sach" in str(caught.value)
    with pytest.raises(UnknownBody):
        registry.resolve_family("NOPE:x")
    assert registry.resolve_family("UBND_TINH") == "UBND_TINH"


def test_a_district_is_found_by_slug_name_or_name_with_its_unit(registry: BodyRegistry) -> None:
    for text in ("nam-sach", "Nam Sách", "huyện Nam Sách", "HUYỆN  NAM SÁCH", unicodedata.normalize("NFD", "Nam Sách")):
        found = registry.find_district(text)
        assert found is not None and found.slug == "nam-sach", text
    assert registry.find_district("thị xã Kinh Môn") is not None
    assert registry.find_district("Nam Sach") is None


# --- routing ---


def test_a_province_complaint_goes_to_the_provincial_peoples_committee(
    routing: RoutingTable, registry: BodyRegistry
) -> None:
    decision = routing.route("complaint", None, "province", None, NO_DISTRICTS, registry)
    assert decision.body == "UBND_TINH" and decision.replaced_from is None
    assert "Luật Khiếu nại 2011" in decision.legal_basis
    assert routing.rules[decision.rule_index].body == "UBND_TINH"


def test_a_district_complaint_goes_to_the_district_committee_until_the_tier_ends_then_to_the_province(
    routing: RoutingTable, registry: BodyRegistry
) -> None:
    before = routing.route("complaint", None, "district", "Nam Sách", LAST_DISTRICT_DAY, registry)
    after = routing.route("complaint", None, "district", "nam-sach", NO_DISTRICTS, registry)
    assert before.body == "UBND_HUYEN:nam-sach"
    assert after.body == "UBND_TINH" and after.rule_index != before.rule_index
    assert "203/2025" in after.legal_basis


def test_a_dissolved_district_inspectorate_routes_to_its_successor(
    routing: RoutingTable, registry: BodyRegistry
) -> None:
    before = routing.route("denunciation", None, "district", "tu-ky", LAST_DISTRICT_DAY, registry)
    after = routing.route("denunciation", None, "district", "tu-ky", NO_DISTRICTS, registry)
    assert (before.body, before.replaced_from) == ("THANH_TRA_HUYEN:tu-ky", None)
    assert (after.body, after.replaced_from) == ("THANH_TRA_TINH", "THANH_TRA_HUYEN:tu-ky")
    assert after.rule_index == before.rule_index


def test_the_most_specific_rule_wins(routing: RoutingTable, registry: BodyRegistry) -> None:
    land = routing.route("recommendation", "Đất đai", "province", None, NO_DISTRICTS, registry)
    other = routing.route("recommendation", "giao thông", "province", None, NO_DISTRICTS, registry)
    assert land.body == "SO_TAI_NGUYEN"
    assert other.body == "UBND_TINH"
    # The subject rules are for province matters: a district land matter still goes to the district.
    assert routing.route("recommendation", "đất đai", "district", "gia-loc", LAST_DISTRICT_DAY, registry).body == (
        "UBND_HUYEN:gia-loc"
    )
    assert routing.route("voter_petition", None, "district", "kinh-mon", LAST_DISTRICT_DAY, registry).body == (
        "HDND_HUYEN:kinh-mon"
    )
    assert routing.route("voter_petition", None, "district", "kinh-mon", NO_DISTRICTS, registry).body == "HDND_TINH"


def test_specificity_then_file_order_decide(registry: BodyRegistry) -> None:
    table = RoutingTable.model_validate(
        {
            "version": "t",
            "rules": [
                {"kind": "*", "body": "UBND_TINH", "legal_basis": "x"},
                {"kind": "complaint", "body": "THANH_TRA_TINH", "legal_basis": "first of two"},
                {"level": "province", "body": "SO_NOI_VU", "legal_basis": "second of two"},
                {
                    "kind": "complaint",
                    "level": "province",
                    "district": "nam-sach",
                    "body": "CA_TINH",
                    "legal_basis": "x",
                },
            ],
        }
    )
    table.check(registry)
    assert table.route("denunciation", None, "commune", None, NO_DISTRICTS, registry).rule_index == 0
    assert table.route("complaint", None, "province", None, NO_DISTRICTS, registry).rule_index == 1
    assert table.route("complaint", None, "province", "Nam Sách", NO_DISTRICTS, registry).body == "CA_TINH"


def test_no_route_names_its_inputs(registry: BodyRegistry) -> None:
    table = RoutingTable.model_validate(
        {
            "version": "t",
            "rules": [
                {"kind": "complaint", "level": "province", "body": "UBND_TINH", "legal_basis": "x"},
            ],
        }
    )
    with pytest.raises(NoRoute) as caught:
        table.route("denunciation", "đất đai", "commune", "Tứ Kỳ", NO_DISTRICTS, registry)
    message = str(caught.value)
    for part in ("'denunciation'", "'đất đai'", "'commune'", "'Tứ Kỳ'", "2025-07-01", "'t'"):
        assert part in message
    assert caught.value.kind == "denunciation" and caught.value.on == NO_DISTRICTS


def test_an_unknown_district_is_refused_by_routing(routing: RoutingTable, registry: BodyRegistry) -> None:
    with pytest.raises(UnknownDistrict, match="'Hải An'"):
        routing.route("complaint", None, "district", "Hải An", LAST_DISTRICT_DAY, registry)


def test_a_rule_outside_its_window_does_not_apply(registry: BodyRegistry) -> None:
    table = RoutingTable.model_validate(
        {
            "version": "t",
            "rules": [
                {"kind": "complaint", "body": "UBND_TINH", "legal_basis": "x", "valid_from": "2026-01-01"},
            ],
        }
    )
    with pytest.raises(NoRoute):
        table.route("complaint", None, "province", None, date(2025, 12, 31), registry)
    assert table.route("complaint", None, "province", None, date(2026, 1, 1), registry).body == "UBND_TINH"


# --- refusing bad data ---


def test_a_duplicate_code_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"bodies\[1\] \(AA\): duplicate code, already bodies\[0\]"):
        BodyRegistry.model_validate({"version": "t", "bodies": [body("AA"), body("AA")]})


def test_a_dangling_successor_parent_or_member_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        BodyRegistry.model_validate(
            {
                "version": "t",
                "bodies": [
                    body("AA", valid_to="2025-07-01", successor="GONE"),
                    body("BB", parent="NOWHERE", members=["NOBODY"]),
                ],
            }
        )
    message = str(caught.value)
    assert "bodies[0] (AA): successor 'GONE' is not a body" in message
    assert "bodies[1] (BB): parent 'NOWHERE'" in message
    assert "member 'NOBODY'" in message


def test_a_successor_cycle_is_refused() -> None:
    with pytest.raises(ValidationError, match="successor cycle AA -> BB -> AA"):
        BodyRegistry.model_validate(
            {
                "version": "t",
                "bodies": [
                    body("AA", valid_to="2025-03-01", successor="BB"),
                    body("BB", valid_to="2025-07-01", successor="AA"),
                ],
            }
        )


def test_a_parent_cycle_is_refused() -> None:
    with pytest.raises(ValidationError, match="parent cycle"):
        BodyRegistry.model_validate({"version": "t", "bodies": [body("AA", parent="BB"), body("BB", parent="AA")]})


def test_bad_dates_are_refused() -> None:
    with pytest.raises(ValidationError, match="valid_from 2025-07-01 must be before valid_to 2025-07-01"):
        BodyRegistry.model_validate(
            {"version": "t", "bodies": [body("AA", valid_from="2025-07-01", valid_to="2025-07-01")]}
        )
    with pytest.raises(ValidationError, match="successor BB given but no valid_to"):
        BodyRegistry.model_validate({"version": "t", "bodies": [body("AA", successor="BB"), body("BB")]})
    with pytest.raises(ValidationError, match="starts only on 2025-09-01"):
        BodyRegistry.model_validate(
            {
                "version": "t",
                "bodies": [
                    body("AA", valid_to="2025-07-01", successor="BB"),
                    body("BB", valid_from="2025-09-01"),
                ],
            }
        )
    with pytest.raises(ValidationError, match="predecessor AA has no valid_to"):
        BodyRegistry.model_validate({"version": "t", "bodies": [body("AA"), body("BB", predecessors=["AA"])]})


def test_a_family_template_with_an_unknown_field_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"uses \{?province"):
        BodyRegistry.model_validate(
            {
                "version": "t",
                "bodies": [
                    body("FF", level="district", instance_name_vi="Cơ quan {province}", instance_name_en="{name}"),
                ],
            }
        )


def test_a_bad_bodies_file_names_the_file_and_the_entry(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "bodies.yaml",
        'version: "t"\nbodies:\n'
        "  - {code: AA, name_vi: Tỉnh ủy, name_en: x, side: party, level: province}\n"
        "  - {code: b-lower, name_vi: x, name_en: x, side: party, level: nation}\n"
        "  - {code: CC, name_vi: x, name_en: x, side: party, level: province, successor: AA,"
        " valid_to: 2025-07-01}\n"
        "  - {code: CC, name_vi: x, name_en: x, side: party, level: province}\n",
    )
    with pytest.raises(RulesFileError) as caught:
        load_bodies(path)
    message = str(caught.value)
    assert str(path) in message
    assert "bodies[1].code" in message and "bodies[1].level" in message and "b-lower" in message
    with pytest.raises(RulesFileError, match=r"bodies\[3\] \(CC\): duplicate code"):
        load_bodies(
            write(
                tmp_path,
                "dup.yaml",
                'version: "t"\nbodies:\n'
                "  - {code: CC, name_vi: x, name_en: x, side: party, level: province}\n"
                "  - {code: CC, name_vi: x, name_en: x, side: party, level: province}\n"
                "  - {code: DD, name_vi: x, name_en: x, side: party, level: province}\n"
                "  - {code: CC, name_vi: x, name_en: x, side: party, level: province}\n",
            )
        )


def test_a_routing_rule_naming_an_unknown_body_or_district_names_the_file_and_the_rule(
    tmp_path: Path, registry: BodyRegistry
) -> None:
    path = write(
        tmp_path,
        "routing.yaml",
        'version: "t"\nrules:\n'
        "  - {kind: complaint, body: UBND_TINH, legal_basis: ok}\n"
        "  - {kind: complaint, level: province, body: SO_KHONG_CO, legal_basis: Luật X}\n"
        '  - {kind: complaint, level: district, district: hai-phong, body: "UBND_HUYEN:{district}",'
        " legal_basis: y}\n",
    )
    with pytest.raises(RulesFileError) as caught:
        load_routing(path, registry)
    message = str(caught.value)
    assert str(path) in message
    assert "rules[1]: body 'SO_KHONG_CO' is not a body of the registry" in message
    assert "Luật X" in message  # the entry itself is quoted
    assert "rules[2]: district 'hai-phong' is not in the registry" in message


def test_a_rule_that_outlives_a_body_without_successor_is_refused(registry: BodyRegistry) -> None:
    table = RoutingTable.model_validate(
        {
            "version": "t",
            "rules": [
                {"kind": "complaint", "level": "district", "body": "UBND_HUYEN:{district}", "legal_basis": "x"},
                {"kind": "complaint", "level": "province", "body": "BTGDV_TU", "legal_basis": "x"},
            ],
        }
    )
    with pytest.raises(RoutingTableError) as caught:
        table.check(registry)
    problems = dict(caught.value.problems)
    assert "valid_to 2025-07-01 or earlier" in problems[0]
    assert "valid_from 2025-03-01 or later" in problems[1]
    # An ended body with a successor may stay in an open rule: routing follows the successor.
    RoutingTable.model_validate(
        {
            "version": "t",
            "rules": [
                {"kind": "complaint", "body": "BDV_TU", "legal_basis": "x"},
            ],
        }
    ).check(registry)


def test_a_rule_hidden_by_an_identical_earlier_one_is_refused(registry: BodyRegistry) -> None:
    table = RoutingTable.model_validate(
        {
            "version": "t",
            "rules": [
                {"kind": "complaint", "subject_category": "Đất đai", "body": "UBND_TINH", "legal_basis": "x"},
                {"kind": "complaint", "subject_category": "đất đai", "body": "SO_TAI_NGUYEN", "legal_basis": "x"},
            ],
        }
    )
    with pytest.raises(RoutingTableError, match=r"rules\[1\]: never chosen: rules\[0\]"):
        table.check(registry)


def test_a_district_placeholder_needs_a_district_rule_and_a_family(registry: BodyRegistry) -> None:
    with pytest.raises(ValidationError, match="level must be district"):
        RoutingTable.model_validate(
            {
                "version": "t",
                "rules": [
                    {"kind": "complaint", "body": "UBND_HUYEN:{district}", "legal_basis": "x"},
                ],
            }
        )
    table = RoutingTable.model_validate(
        {
            "version": "t",
            "rules": [
                {"level": "district", "body": "UBND_TINH:{district}", "legal_basis": "x"},
            ],
        }
    )
    with pytest.raises(RoutingTableError, match="UBND_TINH is not a district family"):
        table.check(registry)


# --- serialisation ---


def test_the_registry_and_the_table_survive_a_json_round_trip(registry: BodyRegistry, routing: RoutingTable) -> None:
    again = BodyRegistry.model_validate_json(registry.model_dump_json())
    assert again == registry
    assert again.codes() == registry.codes()
    assert again.get("BDV_HUYEN:nam-sach") == registry.get("BDV_HUYEN:nam-sach")
    assert RoutingTable.model_validate_json(routing.model_dump_json()) == routing


def test_the_serialised_registry_is_compact(registry: BodyRegistry) -> None:
    data = json.loads(registry.model_dump_json())
    codes = [b["code"] for b in data["bodies"]]
    assert "UBND_HUYEN" in codes and not any(":" in code for code in codes)  # instances are rebuilt, not stored
    minimal = next(b for b in data["bodies"] if b["code"] == "BCHQS_TINH")
    assert set(minimal) == {"code", "name_vi", "name_en", "side", "level"}


def test_the_registry_and_the_table_cross_the_temporal_data_converter(
    registry: BodyRegistry, routing: RoutingTable
) -> None:
    converter = pydantic_data_converter.payload_converter
    decoded_registry, decoded_routing = converter.from_payloads(
        converter.to_payloads([registry, routing]), [BodyRegistry, RoutingTable]
    )
    assert decoded_registry == registry and decoded_routing == routing
    decision = decoded_routing.route("denunciation", None, "district", "tu-ky", NO_DISTRICTS, decoded_registry)
    assert decision.replaced_from == "THANH_TRA_HUYEN:tu-ky"


# --- the activity ---


def test_load_case_rules_includes_the_bodies_and_the_routing() -> None:
    activities = RulesActivities()
    rules = asyncio.run(
        ActivityEnvironment().run(activities.load_case_rules, CaseRulesRequest(received_on=date(2025, 6, 30)))
    )
    assert rules.bodies is activities.bodies and rules.routing is activities.routing
    converter = pydantic_data_converter.payload_converter
    [decoded] = converter.from_payloads(converter.to_payloads([rules]), [CaseRules])
    assert decoded == rules
    assert decoded.bodies is not None and decoded.routing is not None
    assert decoded.routing.route("complaint", None, "district", "nam-sach", date(2025, 6, 30), decoded.bodies).body == (
        "UBND_HUYEN:nam-sach"
    )


def test_case_rules_recorded_before_bodies_existed_still_load() -> None:
    rules = asyncio.run(
        ActivityEnvironment().run(RulesActivities().load_case_rules, CaseRulesRequest(received_on=date(2025, 1, 2)))
    )
    old = json.loads(rules.model_dump_json())
    del old["bodies"], old["routing"]
    restored = CaseRules.model_validate(old)
    assert restored.bodies is None and restored.routing is None


def test_a_bad_routing_file_stops_the_activities_at_start(tmp_path: Path) -> None:
    path = write(tmp_path, "routing.yaml", 'version: "t"\nrules:\n  - {kind: complaint, body: NOPE, legal_basis: x}\n')
    with pytest.raises(RulesFileError, match="NOPE"):
        RulesActivities(routing_path=path)
