"""The payload codec: AES-256-GCM over every payload TokenHub hands to Temporal.

One data converter for every client and worker (:func:`data_converter`, used by
engine/client.py ``connect``): pydantic JSON, then, when payload keys are configured
(``TOKENHUB_TEMPORAL_PAYLOAD_KEYS`` / ``_FILE``, shared/security/payload_keys.py),
encryption. What it covers: workflow and activity inputs and results, signals, queries,
updates, memos, the runs' static summary/details, and failure messages and stack traces
(the failure converter moves them into the encoded attributes). Search attributes are
not payloads of the codec (the server indexes them): they hold ids, mode, status and
cost only (engine/attributes.py), never message text.

Wire format (Temporal's encryption sample's): metadata ``encoding: binary/encrypted`` and
``encryption-key-id: <id>``; data = 12-byte nonce ‖ AES-GCM(serialized Payload) with the
key id as associated data (a payload cannot be relabelled with another id). Payloads of
another encoding pass decode untouched (runs written before the codec was on).

Cost (bench/codec_cost.py, README "Privacy of runs"): encoding and decoding the payloads
of one chat run takes ~0.08 ms of CPU; end to end it is lost in the box's noise.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

from shared.security.payload_keys import PayloadKeys

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12


class PayloadKeyError(ValueError):
    """A payload this process cannot decrypt: unknown key id, or not made with that key."""


class EncryptionCodec(PayloadCodec):
    """Encrypts with the active key; decrypts with whichever key the payload names."""

    def __init__(self, keys: PayloadKeys) -> None:
        super().__init__()
        self.active = keys.active
        self._active_id = keys.active.encode()
        self._ciphers = {kid: AESGCM(key) for kid, key in keys.keys.items()}
        self._active_cipher = self._ciphers[keys.active]

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._active_cipher.encrypt(nonce, payload.SerializeToString(),
                                             self._active_id)
        return Payload(metadata={"encoding": ENCODING, KEY_ID: self._active_id},
                       data=nonce + sealed)

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        kid = payload.metadata.get(KEY_ID, b"")
        cipher = self._ciphers.get(kid.decode("utf-8", "replace"))
        if cipher is None:
            raise PayloadKeyError(
                f"payload encrypted with key id {kid.decode('utf-8', 'replace')!r}, which "
                "this process does not hold: keep old keys in TOKENHUB_TEMPORAL_PAYLOAD_KEYS")
        try:
            plain = cipher.decrypt(payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:], kid)
        except InvalidTag:
            raise PayloadKeyError(f"payload does not decrypt with key id "
                                  f"{kid.decode('utf-8', 'replace')!r}") from None
        return Payload.FromString(plain)


def data_converter(keys: PayloadKeys | None) -> DataConverter:
    """The converter of every client and worker: pydantic JSON, plus encryption (payloads
    and failure messages) when ``keys`` is given."""
    if keys is None:
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter, payload_codec=EncryptionCodec(keys),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes)
