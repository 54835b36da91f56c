"""uvicorn's HTTP protocol, answering unparseable HTTP in the public error shape.

A request uvicorn cannot parse (a malformed request line or header, a bad chunk size)
never reaches the app: the protocol class writes ``400 Invalid HTTP request received.`` as
``text/plain`` and closes the connection. Its one hook is ``send_400_response``; the
classes here override it to send ``{"error": {"type": "invalid_request", "message",
"request_id"}}`` instead (a fresh request id, also in ``X-Request-ID``). The gateway runs
the protocol of api/http_server.py, built on ``HttpToolsGatewayProtocol``
(``uvicorn_options``: api/cli.py, api/processes.py, the tests). What uvicorn answers
before the protocol is even chosen (TLS garbage on a plain port, a connection closed
mid-headers) gets no answer at all, as before.
"""

from __future__ import annotations

import orjson
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from api.errors import error_body
from api.middleware import new_request_id

MESSAGE = "invalid HTTP request: the request line or headers could not be parsed"


def _response(status_line: bytes, default_headers: list[tuple[bytes, bytes]]) -> bytes:
    rid = new_request_id()
    body = orjson.dumps(error_body(type_="invalid_request", message=MESSAGE, request_id=rid))
    head = [status_line]
    for name, value in default_headers:
        head.append(name + b": " + value + b"\r\n")
    head += [b"content-type: application/json\r\n", b"x-request-id: " + rid.encode() + b"\r\n",
             b"content-length: " + str(len(body)).encode() + b"\r\n",
             b"connection: close\r\n", b"\r\n"]
    return b"".join(head) + body


class H11GatewayProtocol(H11Protocol):
    def send_400_response(self, msg: str) -> None:
        self.transport.write(_response(b"HTTP/1.1 400 Bad Request\r\n",
                                       list(self.server_state.default_headers)))
        self.transport.close()


class HttpToolsGatewayProtocol(HttpToolsProtocol):
    def send_400_response(self, msg: str) -> None:
        self.transport.write(_response(b"HTTP/1.1 400 Bad Request\r\n",
                                       list(self.server_state.default_headers)))
        self.transport.close()
