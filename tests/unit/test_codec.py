"""The payload codec: what leaves the process is AES-GCM ciphertext under a key id; what was written before the
codec passes through; a rotated key still opens what was written under it; a foreign or altered payload is
refused, never returned as garbage."""

from __future__ import annotations

import secrets

import pytest
from temporalio.api.common.v1 import Payload

from danvan.codec import ENCODING, KEY_ID, EncryptionCodec, PayloadKeyUnknown, data_converter
from danvan.keys import PAYLOAD_CODEC_LABEL, derive_key, key_id, load_key
from domain.petitions.model import Petitioner

SECRET = secrets.token_bytes(32)


async def test_a_payload_is_encrypted_under_a_key_id_and_decodes_to_what_it_was() -> None:
    converter = data_converter(SECRET)
    (plain,) = converter.payload_converter.to_payloads([Petitioner(name="Nguyễn Thị Ánh", phone="0912345678")])
    (sealed,) = await converter.payload_codec.encode([plain])  # type: ignore[union-attr]
    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata[KEY_ID].decode() == key_id(derive_key(SECRET, PAYLOAD_CODEC_LABEL))
    assert b"json" not in sealed.metadata["encoding"] and "Ánh".encode() not in sealed.data
    assert b"0912345678" not in sealed.data and b"0912345678" not in sealed.SerializeToString()
    (opened,) = await converter.payload_codec.decode([sealed])  # type: ignore[union-attr]
    assert opened == plain
    (back,) = converter.payload_converter.from_payloads([opened], [Petitioner])
    assert back == Petitioner(name="Nguyễn Thị Ánh", phone="0912345678")


async def test_the_same_payload_twice_gives_two_ciphertexts() -> None:
    codec = EncryptionCodec(SECRET)
    payload = Payload(metadata={"encoding": b"json/plain"}, data=b'"x"')
    first, second = await codec.encode([payload, payload])
    assert first.data != second.data


async def test_a_payload_that_is_not_encrypted_passes_through() -> None:
    codec = EncryptionCodec(SECRET)
    recorded = Payload(metadata={"encoding": b"json/plain"}, data=b'{"name": "Tr\\u1ea7n V\\u0103n B\\u00ecnh"}')
    assert await codec.decode([recorded]) == [recorded]


async def test_after_a_rotation_the_old_key_still_opens_what_it_encrypted() -> None:
    old, new = secrets.token_bytes(32), secrets.token_bytes(32)
    payload = Payload(metadata={"encoding": b"json/plain"}, data='"Lê Văn C"'.encode())
    (under_old,) = await EncryptionCodec(old).encode([payload])
    rotated = EncryptionCodec(new, previous=[old])
    (under_new,) = await rotated.encode([payload])
    assert under_new.metadata[KEY_ID] != under_old.metadata[KEY_ID]
    assert await rotated.decode([under_old, under_new]) == [payload, payload]
    with pytest.raises(PayloadKeyUnknown, match="does not hold"):
        await EncryptionCodec(new).decode([under_old])


async def test_an_altered_payload_or_one_moved_under_another_key_id_is_refused() -> None:
    codec = EncryptionCodec(SECRET)
    (sealed,) = await codec.encode([Payload(metadata={"encoding": b"json/plain"}, data=b'"a"')])
    tampered = Payload(metadata=dict(sealed.metadata), data=sealed.data[:-1] + bytes([sealed.data[-1] ^ 1]))
    with pytest.raises(PayloadKeyUnknown, match="does not decrypt"):
        await codec.decode([tampered])
    other = EncryptionCodec(SECRET, previous=[secrets.token_bytes(32)])
    moved = Payload(metadata={**sealed.metadata, KEY_ID: list(other._keys)[1].encode()}, data=sealed.data)
    with pytest.raises(PayloadKeyUnknown, match="does not decrypt"):
        await other.decode([moved])


def test_derived_keys_differ_by_label_and_the_secret_is_made_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert derive_key(SECRET, b"a") != derive_key(SECRET, b"b") != SECRET
    made = load_key(None, tmp_path / "secret.key")
    assert load_key(None, tmp_path / "secret.key") == made and len(made) == 32
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600
    assert list(tmp_path.iterdir()) == [tmp_path / "secret.key"]  # nothing left aside
