"""CORS for the codec server (``/codec/*``): the Temporal UI calls it from its own origin.

The UI's browser sends ``POST /codec/decode`` with ``Content-Type: application/json``,
``X-Namespace`` and (when configured) ``Authorization``, so every call is preceded by a
preflight; with "include cross-origin credentials" it sends the session cookie, which
needs ``Access-Control-Allow-Credentials`` and the exact origin. Allowed origins: the
origin of ``TOKENHUB_TEMPORAL_UI_URL`` (on loopback both ``127.0.0.1`` and ``localhost``)
and ``TOKENHUB_CORS_ORIGINS``. This sits outside the app-wide CORS middleware and answers
for ``/codec/`` alone (that one would refuse the UI's preflight unless the UI were in
``TOKENHUB_CORS_ORIGINS``, and never allows credentials).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.config import Settings

PREFIX = "/codec/"
ALLOW_HEADERS = b"content-type, x-namespace, authorization"
_LOOPBACK = ("127.0.0.1", "localhost")


def codec_origins(settings: Settings) -> frozenset[str]:
    parts = urlsplit(settings.temporal_ui_url)
    origins = {f"{parts.scheme}://{parts.netloc}"} if parts.scheme and parts.netloc else set()
    if parts.hostname in _LOOPBACK:
        port = f":{parts.port}" if parts.port else ""
        origins |= {f"{parts.scheme}://{host}{port}" for host in _LOOPBACK}
    return frozenset(origins | set(settings.cors_origins))


class CodecCORS:
    def __init__(self, app: ASGIApp, *, origins: frozenset[str]) -> None:
        self.app = app
        self.origins = origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        origin = headers.get(b"origin")
        allowed = origin is not None and origin.decode("latin-1") in self.origins
        cors: list[tuple[bytes, bytes]] = [(b"vary", b"Origin")]
        if allowed and origin is not None:
            cors += [(b"access-control-allow-origin", origin),
                     (b"access-control-allow-credentials", b"true")]
        if scope["method"] == "OPTIONS" and b"access-control-request-method" in headers:
            if allowed:
                cors += [(b"access-control-allow-methods", b"POST"),
                         (b"access-control-allow-headers", ALLOW_HEADERS),
                         (b"access-control-max-age", b"600")]
            await send({"type": "http.response.start", "status": 204 if allowed else 403,
                        "headers": [*cors, (b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return
        # the app-wide CORS middleware must not add its own answer for this origin
        scope = {**scope, "headers": [h for h in scope["headers"] if h[0] != b"origin"]}

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *cors]
            await send(message)

        await self.app(scope, receive, send_with_cors)
