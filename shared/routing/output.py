"""Output shaping: strip <think> blocks, validate JSON output against a schema (jsonschema)."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
from jsonschema.exceptions import SchemaError, ValidationError

from shared.errors import BadRequest, OutputValidationFailed

_THINK = re.compile(r"<think>.*?</think>\s*", re.DOTALL | re.IGNORECASE)
_OPEN_THINK = re.compile(r"^\s*<think>.*\Z", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"```(?:json)?\s*\n(.*?)\n?```", re.DOTALL)


def strip_think(text: str) -> str:
    """Remove ``<think>…</think>`` blocks; an unterminated leading block is all thinking."""
    text = _THINK.sub("", text)
    text = _OPEN_THINK.sub("", text)
    return text.strip()


def check_schema(schema: dict[str, Any]) -> None:
    """A bad schema is the client's error (400), not an output failure (422)."""
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        raise BadRequest(f"invalid output schema: {exc.message}") from None


def validate_json_output(text: str, schema: dict[str, Any] | None) -> Any:
    """Parse the model's output as JSON (bare or in a ```json fence) and validate it."""
    candidate = text.strip()
    fenced = _FENCE.search(candidate)
    if fenced and not candidate.startswith(("{", "[")):
        candidate = fenced.group(1).strip()
    try:
        value = json.loads(candidate)
    except ValueError as exc:
        raise OutputValidationFailed(f"model output is not valid JSON: {exc}") from None
    if schema is not None:
        try:
            jsonschema.validate(value, schema)
        except ValidationError as exc:
            where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
            raise OutputValidationFailed(
                f"model output failed the schema at {where}: {exc.message}") from None
    return value
