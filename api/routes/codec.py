"""The codec server: ``POST /codec/decode`` and ``/codec/encode`` (Temporal's codec-server
protocol), so the Temporal UI and CLI show runs' payloads decrypted to operators.

Body and answer: ``{"payloads": [{"metadata": {name: base64}, "data": base64}]}`` (proto3
JSON of ``Payloads``). On the gateway rather than a process of its own: it holds the same
keys, admin token, rate limits and body checks already, and the UI reaches the gateway's
address anyway (a second process would be one more port and secret to deploy).

Who may use it (README "Privacy of runs"): the admin token, as ``Authorization: Bearer``
(``temporal workflow show --codec-endpoint …/codec --codec-auth "Bearer $TOKEN"``) or as
the cookie ``POST /codec/session`` sets (the UI sends cookies with "include cross-origin
credentials"; its own Authorization header carries only an OIDC token, over HTTPS); anyone
else gets 401 and the UI shows the ciphertext. Not needed in development (``tokenhub
dev``: ``TOKENHUB_CODEC_REQUIRE_AUTH``). CORS for the UI's origin: api/codec_cors.py.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import time
from hashlib import sha256

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response
from temporalio.api.common.v1 import Payload

from api.deps import gateway_of
from api.responses import JSONResponse
from api.security import bearer, request_ip, security_of
from engine.codec import EncryptionCodec, PayloadKeyError
from shared.errors import BadRequest, NotFound, RateLimited, Unauthorized

router = APIRouter(tags=["codec"])

COOKIE = "tokenhub_codec"
SESSION_S = 12 * 3600


class WirePayload(BaseModel):
    """One payload in proto3 JSON: every bytes value base64."""

    model_config = ConfigDict(extra="ignore")

    metadata: dict[str, str] = Field(default_factory=dict)
    data: str = ""


class WirePayloads(BaseModel):
    model_config = ConfigDict(extra="ignore")

    payloads: list[WirePayload] = Field(default_factory=list)


def _b64(value: str, where: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"{where} is not valid base64") from None


def _to_payloads(body: WirePayloads) -> list[Payload]:
    return [Payload(metadata={k: _b64(v, f"payloads.{i}.metadata.{k}")
                              for k, v in p.metadata.items()},
                    data=_b64(p.data, f"payloads.{i}.data"))
            for i, p in enumerate(body.payloads)]


def _wire(payloads: list[Payload]) -> dict[str, list[dict[str, object]]]:
    enc = base64.b64encode
    return {"payloads": [{"metadata": {k: enc(v).decode() for k, v in p.metadata.items()},
                          "data": enc(p.data).decode()} for p in payloads]}


def _session_value(admin_token: str, expires: int) -> str:
    mac = hmac.new(admin_token.encode(), f"tokenhub-codec-session:{expires}".encode(), sha256)
    return f"{expires}.{mac.hexdigest()}"


def _valid_session(admin_token: str, cookie: str | None) -> bool:
    if not cookie or "." not in cookie:
        return False
    expires, _, _ = cookie.partition(".")
    if not expires.isdigit() or int(expires) < time.time():
        return False
    return hmac.compare_digest(cookie.encode(),
                               _session_value(admin_token, int(expires)).encode())


def _admin_token_given(request: Request) -> bool:
    token = security_of(request).admin_token.encode()
    return hmac.compare_digest((bearer(request) or "").encode(), token)


def authorize_codec(request: Request) -> None:
    """The admin token (Bearer or session cookie), unless not required (development).
    Failures count against the admin rate limit (guessing), successes do not: the UI
    sends one request per payload it shows."""
    if not gateway_of(request).settings.codec_auth_required:
        return
    sec = security_of(request)
    if _admin_token_given(request) or _valid_session(sec.admin_token,
                                                     request.cookies.get(COOKIE)):
        return
    try:
        sec.admin_limits.check(request_ip(request))
    except RateLimited:
        gateway_of(request).metrics.rate_limited.labels("admin").inc()
        raise
    raise Unauthorized("the codec server needs the admin token: Authorization: Bearer "
                       "$TOKENHUB_ADMIN_TOKEN, or the cookie of POST /codec/session")


def _codec(request: Request) -> EncryptionCodec:
    codec = gateway_of(request).codec
    if codec is None:
        raise NotFound("payload encryption is off: set TOKENHUB_TEMPORAL_PAYLOAD_KEYS")
    return codec


@router.post("/codec/decode", response_model=WirePayloads,
             summary="Decrypt payloads (Temporal codec-server protocol)")
async def decode(body: WirePayloads, request: Request) -> Response:
    authorize_codec(request)
    codec = _codec(request)
    try:
        out = await codec.decode(_to_payloads(body))
    except PayloadKeyError as exc:
        raise BadRequest(str(exc)) from None
    return JSONResponse(_wire(out))


@router.post("/codec/encode", response_model=WirePayloads,
             summary="Encrypt payloads (Temporal codec-server protocol)")
async def encode(body: WirePayloads, request: Request) -> Response:
    authorize_codec(request)
    return JSONResponse(_wire(await _codec(request).encode(_to_payloads(body))))


@router.post("/codec/session", status_code=204,
             summary="Set the codec cookie for the Temporal UI (admin token)")
async def session(request: Request) -> Response:
    """Bearer admin token → an HttpOnly cookie (12 h, path /codec) the Temporal UI sends
    along when its codec setting "include cross-origin credentials" is on."""
    sec = security_of(request)
    if not _admin_token_given(request):
        try:
            sec.admin_limits.check(request_ip(request))
        except RateLimited:
            gateway_of(request).metrics.rate_limited.labels("admin").inc()
            raise
        raise Unauthorized("admin token required: Authorization: Bearer $TOKENHUB_ADMIN_TOKEN")
    expires = int(time.time()) + SESSION_S
    resp = Response(status_code=204)
    secure = request.url.scheme == "https"
    resp.set_cookie(COOKIE, _session_value(sec.admin_token, expires), max_age=SESSION_S,
                    path="/codec", httponly=True, secure=secure,
                    samesite="none" if secure else "lax")
    return resp


_LOGIN = """<!doctype html><meta charset="utf-8"><title>TokenHub codec login</title>
<h1>TokenHub: read runs in the Temporal UI</h1>
<p>Paste the admin token. This browser then gets a cookie (12 h) that lets the Temporal
UI decrypt runs through this gateway's codec server (UI codec setting: endpoint
<code>{endpoint}</code>, "include cross-origin credentials" on).</p>
<form id="f"><input id="t" type="password" size="48" autocomplete="off">
<button>Sign in</button></form><p id="r"></p>
<script>
document.getElementById("f").onsubmit = async (e) => {{
  e.preventDefault();
  const r = await fetch("session", {{method: "POST", credentials: "same-origin",
    headers: {{Authorization: "Bearer " + document.getElementById("t").value}}}});
  document.getElementById("r").textContent = r.ok ? "Signed in." : "Refused (" + r.status + ")";
}};
</script>"""


@router.get("/codec/login", include_in_schema=False)
async def login(request: Request) -> HTMLResponse:
    endpoint = str(request.url_for("decode")).removesuffix("/decode")
    return HTMLResponse(_LOGIN.format(endpoint=endpoint))
