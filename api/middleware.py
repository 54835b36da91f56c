"""Pure-ASGI middleware (cheaper than BaseHTTPMiddleware): request id, body size and time,
and the edge check of every request body (api/bodies.py: JSON only, strict)."""

from __future__ import annotations

import asyncio
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


class _BodyTimeout(HTTPException):
    """Raised from ``receive`` when the body is not complete in time: a 408 that closes
    the connection (the rest of the body would otherwise be read as the next request)."""


class RequestContextMiddleware:
    """Assign the request id (``X-Request-ID`` if valid, else new), echo it, cap body size,
    bound the time the body may take: it must be complete ``body_timeout_s`` after the
    app first asks for it (a client that stops mid-body gets a 408, the connection closed),
    and check the body as the app reads it: ``application/json`` and strict JSON.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, body_timeout_s: float = 60.0,
                 metrics: Metrics | None = None, uploads: dict[str, int] | None = None
                 ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        # POST paths taking a file upload (multipart, not JSON) and their own size limit
        self.uploads = uploads or {}
        self.body_timeout_s = body_timeout_s
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
        upload = scope["method"] == "POST" and scope["path"] in self.uploads
        if upload:
            limit = self.uploads[scope["path"]]
        if length is not None and length.isdigit() and int(length) > limit:
            await self._too_large(send, rid, limit)
            return

        received = 0
        started = False
        status = 500
        t0 = time.perf_counter()
        chunks: list[bytes] = []
        deadline: float | None = None  # for the whole body, from the first read
        body_done = False

        async def limited_receive() -> Message:
            nonlocal received, deadline, body_done
            if body_done:  # e.g. a streaming response listening for the disconnect
                return await receive()
            if deadline is None:
                deadline = asyncio.get_running_loop().time() + self.body_timeout_s
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise _BodyTimeout(408, f"request body not received within "
                                        f"{self.body_timeout_s:g} s (TOKENHUB_BODY_TIMEOUT_S)",
                                   headers={"connection": "close"}) from None
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                if chunk and not received and not upload:
                    check_content_type(scope["headers"])
                received += len(chunk)
                if received > limit:
                    raise _BodyTooLarge(413, f"request body exceeds {limit} bytes")
                body_done = not message.get("more_body", False)
                if upload:
                    pass  # the route parses its multipart body
                elif not body_done:
                    chunks.append(chunk)
                elif received:
                    check_json(b"".join((*chunks, chunk)) if chunks else chunk)
                    chunks.clear()
            else:
                body_done = True
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
                await self._too_large(send, rid, limit)
        except _BodyTimeout as exc:
            if not started:
                status = 408
                await _error(send, rid, 408, "request_timeout", str(exc.detail), close=True)
        finally:
            if self.metrics is not None:
                route = scope.get("route")
                name = getattr(route, "path", None) or "unmatched"
                self.metrics.requests.labels(name, str(status)).inc()
                self.metrics.latency.labels(name).observe(time.perf_counter() - t0)

    async def _too_large(self, send: Send, rid: str, limit: int) -> None:
        what = "TOKENHUB_MAX_BATCH_FILE_BYTES" if limit != self.max_body_bytes \
            else "TOKENHUB_MAX_BODY_BYTES"
        await _error(send, rid, 413, "payload_too_large",
                     f"request body exceeds {limit} bytes ({what})")


async def _error(send: Send, rid: str, status: int, type_: str, message: str, *,
                 close: bool = False) -> None:
    """An error response in the public shape, sent from outside the app."""
    body = orjson.dumps(error_body(type_=type_, message=message, request_id=rid))
    headers = [(b"content-type", b"application/json"), (b"x-request-id", rid.encode()),
               (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
