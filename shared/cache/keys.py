"""The cache key: a hash of the canonical request, after directives are stripped.

What decides the answer goes in: the resolved model (or, for ``auto``, the ordered
candidate list), the messages as sent upstream, every forwarded parameter (tools
included), the output format, and the scope (the API key, unless the scope is
``global``). What does not goes out: the request id, streaming, stream options, the
cache directive itself and the routing policy (its effect is the candidate list).
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

GLOBAL = "global"
ANONYMOUS = "anonymous"


def cache_key(*, scope: str, models: list[str], messages: list[dict[str, Any]],
              parameters: dict[str, Any], output_format: dict[str, Any] | None) -> str:
    """SHA-256 (hex) of the canonical JSON of the request (keys sorted)."""
    canonical = orjson.dumps(
        {"v": 1, "scope": scope, "models": models, "messages": messages,
         "parameters": parameters, "output_format": output_format},
        option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return hashlib.sha256(canonical).hexdigest()
