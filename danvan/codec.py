"""Every Temporal payload encrypted: the project's `PayloadCodec` and data converter.

Temporal keeps workflow inputs, results, activity arguments, Update arguments and query answers in its own
database and shows them in its Web UI. With this codec they leave the process as AES-256-GCM ciphertext: the
Temporal server, its database and anyone reading its history see `binary/encrypted` payloads and a key id,
nothing else. The key is derived from the installation's secret (`danvan.keys`, label
`PAYLOAD_CODEC_LABEL`); the key id travels in each payload's metadata, so after a rotation the old key, kept
in `previous`, still opens what was written under it. A payload that is not encrypted (histories recorded
before the codec, kept in `tests/replay/`) passes through decoding unchanged.

Only the payload's data is encrypted with its original metadata (its encoding, e.g. `json/plain`), both
inside the ciphertext; the key id is bound as associated data, so a payload moved under another key id does
not decrypt.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Iterable, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, PayloadCodec

from .keys import PAYLOAD_CODEC_LABEL, derive_key, key_id

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12


class PayloadKeyUnknown(ValueError):
    """A payload was encrypted under a key this process does not hold."""


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM over each payload; encrypts with the first key, decrypts with whichever its id names."""

    def __init__(self, secret: bytes, previous: Iterable[bytes] = ()) -> None:
        keys = [derive_key(s, PAYLOAD_CODEC_LABEL) for s in (secret, *previous)]
        self.key_id = key_id(keys[0])
        self._encrypt = AESGCM(keys[0])
        self._keys = {key_id(k): AESGCM(k) for k in keys}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encode_one(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decode_one(p) for p in payloads]

    def encode_one(self, payload: Payload) -> Payload:
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._encrypt.encrypt(nonce, payload.SerializeToString(), self.key_id.encode())
        return Payload(metadata={"encoding": ENCODING, KEY_ID: self.key_id.encode()}, data=nonce + sealed)

    def decode_one(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload  # written before the codec, or by another converter: nothing to open
        kid = payload.metadata.get(KEY_ID, b"").decode()
        aead = self._keys.get(kid)
        if aead is None:
            raise PayloadKeyUnknown(f"payload encrypted under key {kid!r}, which this process does not hold")
        try:
            clear = aead.decrypt(payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:], kid.encode())
        except InvalidTag:
            raise PayloadKeyUnknown(f"payload under key {kid!r} does not decrypt (altered, or another key)") from None
        return Payload.FromString(clear)


def data_converter(secret: bytes, previous: Iterable[bytes] = ()) -> DataConverter:
    """The project's data converter: pydantic payloads, encrypted by `EncryptionCodec`."""
    return dataclasses.replace(pydantic_data_converter, payload_codec=EncryptionCodec(secret, previous))


def opened(converter: DataConverter, payload: Payload) -> Payload:
    """`payload` decrypted when `converter` encrypts, for code that reads raw history events (which the SDK
    hands over as stored) outside an async context."""
    codec = converter.payload_codec
    return codec.decode_one(payload) if isinstance(codec, EncryptionCodec) else payload
