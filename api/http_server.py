"""The HTTP server's connection limits: uvicorn's httptools protocol, bounded.

uvicorn bounds neither the size of a request head under httptools (llhttp has no header
limit; a 32 MiB header was accepted) nor the time a connection may take to send its
first request head (a slowloris connection stayed open forever; the keep-alive timeout
only runs *between* requests). ``LimitedHttpToolsProtocol`` adds both:

- a request head (request line and headers) larger than ``max_head_bytes`` is answered
  ``431`` in the public error shape and the connection closed. Bytes are counted as they
  arrive, before the parser buffers them: a chunk that would cross the limit is fed only
  up to it, so the head is refused at the limit, not after it was held;
- a connection that has not completed its request head ``head_timeout_s`` after it
  opened (or after the first byte of a later keep-alive request) is closed.

Why not h11, which has ``h11_max_incomplete_event_size``: it rejects with a 400, still
needs the timeout added the same way, and costs more CPU per request than httptools
(measured in the README's "Limits"). The body read timeout is an ASGI concern
(``api/middleware.py``: a 408 in the error shape). ``uvicorn_options`` is the one place
that turns settings into uvicorn's arguments: ``tokenhub serve``, ``serve --workers N``
and the test server all use it.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import orjson
from uvicorn.config import Config
from uvicorn.server import ServerState

from api.errors import error_body
from api.http_protocol import HttpToolsGatewayProtocol
from api.middleware import new_request_id
from shared.config import Settings


class LimitedHttpToolsProtocol(HttpToolsGatewayProtocol):
    """uvicorn's httptools protocol with a head size limit and a head read timeout (and
    unparseable HTTP answered in the error shape: api/http_protocol.py)."""

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None, *, max_head_bytes: int,
                 head_timeout_s: float) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._max_head = max_head_bytes
        self._head_timeout_s = head_timeout_s
        self._in_head = True  # waiting for (the rest of) a request head
        self._head_room = max_head_bytes  # bytes the current head may still take
        self._head_timer: asyncio.TimerHandle | None = None

    # -- connection ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # A chunk crossing the limit is fed up to the limit only: if the head ends
        # there, the rest is fed as usual; if not, the head is too large. (Pipelined
        # bytes after a complete request in the same chunk count towards nothing:
        # one read's worth at most.)
        while self._in_head and len(data) > self._head_room:
            head, data = data[:self._head_room], data[self._head_room:]
            self._head_room = 0
            super().data_received(head)
            if self.transport.is_closing():
                return
            if self._in_head:
                self._reject_head()
                return
        if self._in_head:
            self._head_room -= len(data)
        super().data_received(data)

    # -- parser callbacks ----------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head_timer is None:  # a later request on a kept-alive connection
            self._arm_head_timer()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._cancel_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head, self._head_room = True, self._max_head

    # -- limits --------------------------------------------------------------------------
    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self._head_timeout_s, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self._in_head or self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self._arm_head_timer()  # a pipelined head behind a response still being sent
            return
        self.transport.close()

    def _reject_head(self) -> None:
        rid = new_request_id()
        body = orjson.dumps(error_body(
            type_="request_header_fields_too_large",
            message=f"request line and headers exceed {self._max_head} bytes "
                    "(TOKENHUB_MAX_HEADER_BYTES)", request_id=rid))
        self.transport.write(b"".join([
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
            b"content-type: application/json\r\n",
            b"x-request-id: ", rid.encode(), b"\r\n",
            b"content-length: ", str(len(body)).encode(), b"\r\n",
            b"connection: close\r\n\r\n", body]))
        self.transport.close()


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """uvicorn ``Config`` arguments carrying the connection limits of ``settings``
    (picklable: ``serve --workers N`` sends them to its processes)."""
    protocol = functools.partial(LimitedHttpToolsProtocol,
                                 max_head_bytes=settings.max_header_bytes,
                                 head_timeout_s=settings.header_timeout_s)
    return {"http": protocol, "h11_max_incomplete_event_size": settings.max_header_bytes}
