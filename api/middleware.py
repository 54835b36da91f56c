"""Pure-ASGI middleware (cheaper than BaseHTTPMiddleware): request id, body limit, and the
edge check of every request body (api/bodies.py: JSON only, strict)."""

from __future__ import annotations

import re
import time
import uuid

import orjson
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.bodies import check_content_type, check_json
from api.errors import error_body
from shared.telemetry.metrics import Metrics

_VALID_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def new_request_id() -> str:
    return "req_" + uuid.uuid4().hex


class _BodyTooLarge(HTTPException):
    """Raised from ``receive`` so FastAPI's body parsing re-raises it as a 413."""


class RequestContextMiddleware:
    """Assign the request id (``X-Request-ID`` if valid, else new), echo it, cap body size,
    and check the body as the app reads it: ``application/json`` and strict JSON."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int,
                 metrics: Metrics | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = None
        length = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                if _VALID_ID.match(candidate):
                    rid = candidate
            elif name == b"content-length":
                length = value
        state = scope.setdefault("state", {})
        state["request_id_from_client"] = rid is not None  # idempotent retries
        rid = rid or new_request_id()
        state["request_id"] = rid
        rid_header = (b"x-request-id", rid.encode())
        limit = self.max_body_bytes
        if length is not None and length.isdigit() and int(length) > limit:
            await self._too_large(send, rid)
            return

        received = 0
        chunks: list[bytes] = []
        started = False
        status = 500
        t0 = time.perf_counter()

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                if chunk and not received:
                    check_content_type(scope["headers"])
                received += len(chunk)
                if received > limit:
                    raise _BodyTooLarge(413, f"request body exceeds {limit} bytes")
                if message.get("more_body", False):
                    chunks.append(chunk)
                elif received:
                    check_json(b"".join((*chunks, chunk)) if chunks else chunk)
                    chunks.clear()
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal started, status
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                headers = [h for h in message.get("headers", []) if h[0] != b"x-request-id"]
                headers.append(rid_header)
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_id)
        except _BodyTooLarge:
            if not started:
                status = 413
                await self._too_large(send, rid)
        finally:
            if self.metrics is not None:
                route = scope.get("route")
                name = getattr(route, "path", None) or "unmatched"
                self.metrics.requests.labels(name, str(status)).inc()
                self.metrics.latency.labels(name).observe(time.perf_counter() - t0)

    async def _too_large(self, send: Send, rid: str) -> None:
        body = orjson.dumps(error_body(
            type_="payload_too_large",
            message=f"request body exceeds {self.max_body_bytes} bytes", request_id=rid))
        await send({"type": "http.response.start", "status": 413, "headers": [
            (b"content-type", b"application/json"), (b"x-request-id", rid.encode()),
            (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
