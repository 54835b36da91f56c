"""Map every failure to the one public error shape (SPEC §3)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.responses import JSONResponse
from shared.errors import TokenHubError

log = logging.getLogger("tokenhub.api")

_STATUS_TYPES = {
    400: "invalid_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 408: "request_timeout", 409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type", 422: "invalid_request", 429: "rate_limited",
}


def request_id_of(request: Request) -> str:
    return str(getattr(request.state, "request_id", "") or "")


def error_body(*, type_: str, message: str, request_id: str,
               extra: dict[str, Any] | None = None) -> dict[str, Any]:
    err: dict[str, Any] = {"type": type_, "message": message, "request_id": request_id}
    if extra:
        err.update(extra)
    return {"error": err}


def error_response(request: Request, err: TokenHubError,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    body = error_body(type_=err.error_type, message=err.message,
                      request_id=request_id_of(request), extra=err.details or None)
    hdrs = {**err.headers(), **(headers or {})}
    return JSONResponse(body, status_code=err.status_code, headers=hdrs)


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for e in exc.errors()[:10]:
        loc = [str(x) for x in e.get("loc", ()) if x != "body"]
        where = ".".join(loc) or "body"
        if e.get("type") == "json_invalid":
            return f"malformed JSON body: {e.get('ctx', {}).get('error', e.get('msg'))}"
        parts.append(f"{where}: {e.get('msg')}")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TokenHubError)
    async def _tokenhub(request: Request, exc: TokenHubError) -> JSONResponse:
        return error_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        body = error_body(type_="invalid_request", message=_describe_validation(exc),
                          request_id=request_id_of(request))
        return JSONResponse(body, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        type_ = _STATUS_TYPES.get(exc.status_code, "error")
        body = error_body(type_=type_, message=str(exc.detail),
                          request_id=request_id_of(request))
        return JSONResponse(body, status_code=exc.status_code,
                              headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"request_id": request_id_of(request)})
        body = error_body(type_="internal_error", message="internal error",
                          request_id=request_id_of(request))
        return JSONResponse(body, status_code=500)
