"""The OpenAPI document as a contract: every status a route answers, in the error shape.

FastAPI documents a 422 (its own validation error shape) on every route with a body or
parameters; TokenHub answers those with a 400 in the SPEC §3 shape. :func:`finish`
drops the 422s (and their schemas), adds the ``ErrorResponse`` component, and gives every
operation the error statuses it can answer: the edge's (400 bad body or parameter, 413,
415), the guard's (401, 403, 429) and the route's own (``_ROUTE_ERRORS``). The schemathesis
test (tests/api/test_openapi_contract.py) checks the live answers against this document.
"""

from __future__ import annotations

from typing import Any

from api.schemas import ErrorResponse

_REF = "#/components/schemas/ErrorResponse"
_DESCRIPTIONS = {
    400: "Invalid request: a bad body, parameter or value (the message names the field)",
    401: "Missing or invalid credentials",
    403: "The API key lacks the scope, or its budget is spent",
    404: "Not found",
    409: "Conflict with the current state (an id already in use, a request already rated "
         "by that source)",
    413: "Request body too large",
    415: "The body is not application/json",
    422: "The model's output failed the requested JSON schema",
    416: "The stream's run is finished and has no event after that offset",
    429: "Rate limited (see Retry-After)",
    502: "Every provider attempt failed (attempts listed)",
    503: "Nothing eligible, the vault is locked, or (async runs, batches) Temporal is "
         "unavailable",
}
_RUN = {404, 422, 502, 503}
_ROUTE_ERRORS: dict[tuple[str, str], set[int]] = {
    ("post", "/v1/chat"): _RUN,
    ("post", "/v1/chat/completions"): _RUN,
    ("post", "/v1/plan"): _RUN,
    ("post", "/v1/embeddings"): {404, 502, 503},
    ("get", "/v1/runs/{request_id}/stream"): {404, 416, 503},
    ("post", "/v1/runs/{request_id}/cancel"): {404, 409, 503},
    ("post", "/codec/decode"): {404},  # 404: payload encryption is off
    ("post", "/codec/encode"): {404},
    ("post", "/v1/feedback"): {404, 409},
    ("get", "/v1/feedback"): {404},
    ("post", "/v1/runs"): {404, 503},
    ("get", "/v1/runs"): {503},
    ("get", "/v1/runs/{run_id}"): {404, 503},
    ("get", "/v1/runs/{run_id}/events"): {404, 503},
    ("post", "/v1/files"): {400, 413},
    ("get", "/v1/files/{file_id}"): {404},
    ("delete", "/v1/files/{file_id}"): {404},
    ("get", "/v1/files/{file_id}/content"): {404},
    ("post", "/v1/batches"): {404, 503},
    ("get", "/v1/batches/{batch_id}"): {404},
    ("post", "/v1/batches/{batch_id}/cancel"): {404, 503},
    ("post", "/admin/v1/providers"): {409, 503},
    ("get", "/admin/v1/providers/{provider_id}"): {404},
    ("patch", "/admin/v1/providers/{provider_id}"): {404, 409, 503},
    ("delete", "/admin/v1/providers/{provider_id}"): {404},
    ("post", "/admin/v1/models"): {409},
    ("patch", "/admin/v1/models/{model_id}"): {404, 409},
    ("delete", "/admin/v1/models/{model_id}"): {404},
    ("post", "/admin/v1/vault/rotate"): {404},
    ("post", "/admin/v1/apikeys/{key_id}/rotate"): {403, 404},
    ("delete", "/admin/v1/apikeys/{key_id}"): {404},
    ("post", "/admin/v1/routing/simulate"): {404, 503},
    ("get", "/admin/v1/providers/{provider_id}/discover"): {404, 502},
    ("post", "/admin/v1/providers/{provider_id}/discover"): {404, 409, 502},
    ("post", "/admin/v1/aliases"): {409},
    ("get", "/admin/v1/aliases/{alias_id}"): {404},
    ("put", "/admin/v1/aliases/{alias_id}"): {404, 409},
    ("delete", "/admin/v1/aliases/{alias_id}"): {404},
}
_UNGUARDED = {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"}


def error_statuses(method: str, path: str, op: dict[str, Any]) -> set[int]:
    codes = set(_ROUTE_ERRORS.get((method, path), set()))
    if "requestBody" in op:
        codes |= {400, 413, 415}
    if op.get("parameters"):
        codes.add(400)
    if path.startswith(("/admin/", "/codec/")):  # the admin token
        codes |= {401, 429}
    elif path not in _UNGUARDED:
        codes |= {401, 403, 429}
    return codes


def finish(schema: dict[str, Any]) -> dict[str, Any]:
    """Error responses on every operation; FastAPI's 422 entries and schemas removed."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    js = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in js.pop("$defs", {}).items():
        components.setdefault(name, sub)
    components["ErrorResponse"] = js
    for path, ops in schema.get("paths", {}).items():
        for method, op in ops.items():
            responses = op.setdefault("responses", {})
            if "HTTPValidationError" in str(responses.get("422", "")):
                del responses["422"]
            for code in sorted(error_statuses(method, path, op)):
                entry: dict[str, Any] = {
                    "description": _DESCRIPTIONS[code],
                    "content": {"application/json": {"schema": {"$ref": _REF}}}}
                if code == 429:
                    entry["headers"] = {"Retry-After": {
                        "description": "seconds to wait", "schema": {"type": "integer"}}}
                responses.setdefault(str(code), entry)
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    return schema
