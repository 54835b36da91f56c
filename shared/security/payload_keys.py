"""Keys of the Temporal payload codec (engine/codec.py): parsed once, here.

``TOKENHUB_TEMPORAL_PAYLOAD_KEYS`` (or the file named by ``…_FILE``) holds one or more
``<key id>:<base64 of 32 bytes>`` entries, comma- or newline-separated. The **first**
encrypts; every entry decrypts, so a rotation prepends the new key and keeps the old ones
until no retained run was written with them. The key id travels in each payload's
metadata (never the key), so a reader knows which key to use.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from dataclasses import dataclass

from shared.errors import ConfigError

KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
KEY_BYTES = 32  # AES-256


@dataclass(frozen=True)
class PayloadKeys:
    """The encrypting key's id and every key by id (the encrypting one included)."""

    active: str
    keys: dict[str, bytes]

    def texts(self) -> list[str]:
        """The keys as configured (base64), for log redaction."""
        return [base64.b64encode(k).decode() for k in self.keys.values()]


def parse_payload_keys(text: str, *, source: str) -> PayloadKeys:
    """Parse ``id:base64key[,id:base64key…]``; a ConfigError names ``source`` and the entry
    (never the key)."""
    entries = [e.strip() for e in re.split(r"[,\n]", text) if e.strip()]
    if not entries:
        raise ConfigError(f"{source}: no key given (expected <id>:<base64 of 32 bytes>)")
    keys: dict[str, bytes] = {}
    for n, entry in enumerate(entries, 1):
        kid, sep, b64 = entry.partition(":")
        kid = kid.strip()
        if not sep or not KEY_ID.match(kid):
            raise ConfigError(f"{source}: entry {n} must be <id>:<base64 key> with an id of "
                              "letters, digits, '.', '_' or '-' (at most 64)")
        if kid in keys:
            raise ConfigError(f"{source}: key id {kid!r} is given twice")
        try:
            raw = base64.b64decode(b64.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(f"{source}: key {kid!r} is not valid base64") from None
        if len(raw) != KEY_BYTES:
            raise ConfigError(f"{source}: key {kid!r} must be {KEY_BYTES} bytes "
                              f"(AES-256), not {len(raw)}")
        keys[kid] = raw
    return PayloadKeys(active=next(iter(keys)), keys=keys)


def new_key_entry(key_id: str) -> str:
    """A fresh ``<id>:<base64 key>`` entry (``tokenhub codec-key``, ``tokenhub dev``)."""
    if not KEY_ID.match(key_id):
        raise ConfigError(f"key id {key_id!r}: letters, digits, '.', '_' or '-' (at most 64)")
    return f"{key_id}:{base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()}"
