"""The codec server (api/routes/codec.py): Temporal's protocol, the admin token (Bearer or
session cookie), CORS for the Temporal UI's origin."""

from __future__ import annotations

import base64
from typing import Any

import httpx

from shared.security.payload_keys import new_key_entry

ADMIN = "codec-admin-token-0123456789"
UI = "http://127.0.0.1:8233"
TEXT = b'{"messages": [{"role": "user", "content": "a private question"}]}'


def _wire(metadata: dict[str, bytes], data: bytes) -> dict[str, Any]:
    enc = base64.b64encode
    return {"metadata": {k: enc(v).decode() for k, v in metadata.items()},
            "data": enc(data).decode()}


def _client(srv: Any) -> httpx.Client:
    return httpx.Client(base_url=srv.url, timeout=30, trust_env=False)


def test_encode_decode_round_trip_with_the_admin_token(gateway_factory: Any) -> None:
    srv = gateway_factory(admin_token=ADMIN, temporal_payload_keys=new_key_entry("k1"))
    auth = {"Authorization": f"Bearer {ADMIN}", "X-Namespace": "default"}
    body = {"payloads": [_wire({"encoding": b"json/plain"}, TEXT)]}
    with _client(srv) as c:
        enc = c.post("/codec/encode", json=body, headers=auth)
        assert enc.status_code == 200, enc.text
        [sealed] = enc.json()["payloads"]
        assert base64.b64decode(sealed["metadata"]["encoding"]) == b"binary/encrypted"
        assert base64.b64decode(sealed["metadata"]["encryption-key-id"]) == b"k1"
        assert b"private" not in base64.b64decode(sealed["data"])
        dec = c.post("/codec/decode", json={"payloads": [sealed]}, headers=auth)
        assert dec.status_code == 200, dec.text
        assert dec.json() == body
        # a payload in clear (a run from before the codec) comes back as it was
        assert c.post("/codec/decode", json=body, headers=auth).json() == body
        bad = c.post("/codec/decode", headers=auth, json={"payloads": [
            {"metadata": sealed["metadata"], "data": "###"}]})
        assert bad.status_code == 400 and "base64" in bad.json()["error"]["message"]


def test_without_the_token_401_and_no_plaintext(gateway_factory: Any) -> None:
    srv = gateway_factory(admin_token=ADMIN, temporal_payload_keys=new_key_entry("k1"))
    auth = {"Authorization": f"Bearer {ADMIN}"}
    with _client(srv) as c:
        sealed = c.post("/codec/encode", headers=auth, json={
            "payloads": [_wire({"encoding": b"json/plain"}, TEXT)]}).json()
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            r = c.post("/codec/decode", json=sealed, headers=headers)
            assert r.status_code == 401 and "private" not in r.text
            assert r.json()["error"]["type"] == "unauthorized"
        assert c.post("/codec/encode", json=sealed).status_code == 401
        assert c.post("/codec/session").status_code == 401


def test_session_cookie_lets_the_ui_decode(gateway_factory: Any) -> None:
    srv = gateway_factory(admin_token=ADMIN, temporal_payload_keys=new_key_entry("k1"))
    with _client(srv) as c:
        sealed = c.post("/codec/encode", headers={"Authorization": f"Bearer {ADMIN}"},
                        json={"payloads": [_wire({}, TEXT)]}).json()
        r = c.post("/codec/session", headers={"Authorization": f"Bearer {ADMIN}"})
        assert r.status_code == 204
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "Path=/codec" in cookie and ADMIN not in cookie
        ok = c.post("/codec/decode", json=sealed, headers={"Origin": UI})  # cookie jar
        assert ok.status_code == 200 and base64.b64decode(ok.json()["payloads"][0]["data"]) \
            == TEXT
        assert ok.headers["access-control-allow-origin"] == UI
        assert ok.headers["access-control-allow-credentials"] == "true"
    with _client(srv) as c:
        forged = c.post("/codec/decode", json=sealed,
                        headers={"Cookie": "tokenhub_codec=9999999999.forged"})
        assert forged.status_code == 401
    assert "Sign in" in httpx.get(f"{srv.url}/codec/login", trust_env=False).text


def test_cors_preflight_for_the_ui_origin_only(gateway_factory: Any) -> None:
    srv = gateway_factory(admin_token=ADMIN, temporal_payload_keys=new_key_entry("k1"),
                          cors_origins="https://app.example")
    pre = {"Access-Control-Request-Method": "POST",
           "Access-Control-Request-Headers": "content-type,x-namespace,authorization"}
    with _client(srv) as c:
        for origin in (UI, "http://localhost:8233", "https://app.example"):
            r = c.options("/codec/decode", headers={"Origin": origin, **pre})
            assert r.status_code == 204, (origin, r.text)
            assert r.headers["access-control-allow-origin"] == origin
            assert "x-namespace" in r.headers["access-control-allow-headers"]
            assert "authorization" in r.headers["access-control-allow-headers"]
            assert r.headers["access-control-allow-credentials"] == "true"
        evil = c.options("/codec/decode", headers={"Origin": "https://evil.example", **pre})
        assert evil.status_code == 403
        assert "access-control-allow-origin" not in evil.headers
        plain = c.post("/codec/decode", json={"payloads": []},
                       headers={"Origin": "https://evil.example"})
        assert plain.status_code == 401 and "access-control-allow-origin" not in plain.headers


def test_off_without_keys_and_open_in_development(gateway_factory: Any) -> None:
    off = gateway_factory(admin_token=ADMIN)
    with _client(off) as c:
        r = c.post("/codec/decode", json={"payloads": []},
                   headers={"Authorization": f"Bearer {ADMIN}"})
        assert r.status_code == 404 and "TOKENHUB_TEMPORAL_PAYLOAD_KEYS" in r.text
    dev = gateway_factory(admin_token=ADMIN, env="development",
                          temporal_payload_keys=new_key_entry("d1"))
    with _client(dev) as c:
        assert c.post("/codec/encode", json={"payloads": [_wire({}, b"x")]}).status_code == 200
