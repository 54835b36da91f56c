"""Issue 13, classes 1 and 4: client input ends in a 4xx naming the field, never a 500;
request bodies must be ``application/json``. Inputs of our own, one per finding."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fake_provider import FakeProvider
from tests.support.server import ThreadedServer

ADMIN = "edge-admin-token-0123456789"
MSG = [{"role": "user", "content": "hi"}]
JSON = {"content-type": "application/json"}


def _error(r: httpx.Response, status: int, type_: str, *needles: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    err: dict[str, Any] = r.json()["error"]
    assert err["type"] == type_ and err["request_id"] == r.headers["x-request-id"]
    for needle in needles:
        assert needle in err["message"], err["message"]
    return err


@pytest.fixture
def edge(gateway_factory: Any) -> ThreadedServer:
    srv: ThreadedServer = gateway_factory(admin_token=ADMIN, rate_limit_rps=1000,
                                          rate_limit_burst=1000)
    return srv


def _client(srv: ThreadedServer, **headers: str) -> httpx.Client:
    return httpx.Client(base_url=srv.url, trust_env=False, timeout=30, headers=headers)


def test_out_of_range_sampling_parameter_is_a_400_naming_it(client: httpx.Client,
                                                             fake: FakeProvider) -> None:
    for params in ({"top_p": 1.5}, {"temperature": -0.5}, {"n": 2}, {"max_tokens": 0}):
        r = client.post("/v1/chat/completions",
                        json={"model": "auto", "messages": MSG, **params})
        _error(r, 400, "invalid_request", next(iter(params)))
    assert fake.count() == 0


@pytest.mark.parametrize(("path", "body", "where"), [
    ("/v1/chat/completions", b'{"model": "auto", "messages": [{"role": "user", '
     b'"content": "hi"}], "seed": 36893488147419103232}', "seed"),
    ("/v1/chat", b'{"request": {"messages": [{"role": "user", "content": "hi", '
     b'"x_meta": {"n": [1, -99999999999999999999999]}}]}}', "request.messages.0.x_meta.n.1"),
    ("/v1/plan", b'{"request": {"messages": [{"role": "user", "content": "a\\udc00b"}]}}',
     "request.messages.0.content"),
    ("/v1/chat", b'{"request": {"messages": [{"role": "user", "content": "x\\u0000y"}]}}',
     "request.messages.0.content"),
    ("/v1/chat/completions", b'{"model": "auto", "messages": [{"role": "user", '
     b'"content": "hi"}], "my\\u0000param": 1}', "my"),
    ("/admin/v1/apikeys", b'{"name": "bad\\ud83d", "scopes": ["chat"]}', "name"),
])
def test_values_no_later_step_can_carry_are_refused_at_parse_time(
        edge: ThreadedServer, fake: FakeProvider, path: str, body: bytes, where: str) -> None:
    with _client(edge, Authorization=f"Bearer {ADMIN}") as c:
        _error(c.post(path, content=body, headers=JSON), 400, "invalid_request", where)
    assert fake.count() == 0


def test_64_bit_integers_still_pass(client: httpx.Client, fake: FakeProvider) -> None:
    r = client.post("/v1/chat/completions", json={"model": "small", "messages": MSG,
                                                  "seed": 2**63 - 1})
    assert r.status_code == 200, r.text
    assert fake.calls()[0]["params"]["seed"] == 2**63 - 1


def test_nan_and_huge_numbers_are_refused(client: httpx.Client) -> None:
    for raw in (b'{"request": {"messages": [{"role": "user", "content": "x"}]}, '
                b'"policy": {"max_budget_usd": NaN}}',
                b'{"request": {"messages": [{"role": "user", "content": "x"}]}, '
                b'"policy": {"max_budget_usd": 1e999}}'):
        _error(client.post("/v1/chat", content=raw, headers=JSON), 400, "invalid_request")
    r = client.post("/v1/chat", json={"request": {"messages": MSG},
                                      "policy": {"max_budget_usd": "Infinity"}})
    _error(r, 400, "invalid_request", "max_budget_usd")


def test_admin_inputs_that_used_to_end_in_a_500(edge: ThreadedServer) -> None:
    with _client(edge, Authorization=f"Bearer {ADMIN}") as c:
        _error(c.post("/admin/v1/vault/unlock", json={"password": "short"}), 400,
               "invalid_request", "password", "8 characters")
        _error(c.get("/admin/v1/audit", params={"cursor": 2**70}), 400, "invalid_request",
               "cursor")
        for when in ("9999-12-31T23:00:00-05:00", "0001-01-01T00:30:00+01:00"):
            r = c.post("/admin/v1/apikeys", json={"name": "k", "expires_at": when})
            _error(r, 400, "invalid_request", "expires_at")
        _error(c.post("/admin/v1/apikeys", json={"name": "k", "scopes": ["root"]}), 400,
               "invalid_request", "scopes")
        r = c.post("/admin/v1/apikeys",
                   json={"name": "k", "expires_at": "2999-01-01T01:00:00+02:00"})
        assert r.status_code == 201 and r.json()["key"]["expires_at"].startswith("2998-12-31T23")


def test_concurrent_first_unlocks_all_succeed(edge: ThreadedServer) -> None:
    results: list[int] = []

    def unlock(pw: str) -> None:
        with _client(edge, Authorization=f"Bearer {ADMIN}") as c:
            results.append(c.post("/admin/v1/vault/unlock", json={"password": pw}).status_code)

    threads = [threading.Thread(target=unlock, args=("same password 123",)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == [200, 200, 200]
    with _client(edge, Authorization=f"Bearer {ADMIN}") as c:
        assert c.get("/admin/v1/vault").json()["state"] == "unlocked"
        r = c.post("/admin/v1/vault/unlock", json={"password": "another password"})
        _error(r, 401, "unauthorized")


@pytest.mark.parametrize("path", ["/v1/chat", "/v1/chat/completions", "/v1/plan",
                                  "/admin/v1/apikeys"])
@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded",
                                   "multipart/form-data; boundary=x", None,
                                   "application/json; charset=latin-1"])
def test_json_routes_refuse_other_content_types(edge: ThreadedServer, fake: FakeProvider,
                                                path: str, ctype: str | None) -> None:
    body = (b'{"model": "auto", "messages": [{"role": "user", "content": "hi"}], '
            b'"request": {"messages": [{"role": "user", "content": "hi"}]}, "name": "x"}')
    headers = {"Authorization": f"Bearer {ADMIN}"}
    if ctype is not None:
        headers["content-type"] = ctype
    with _client(edge) as c:
        r = c.post(path, content=body, headers=headers)
    _error(r, 415, "unsupported_media_type", "application/json")
    assert fake.count() == 0


def test_json_with_a_utf8_charset_is_accepted(client: httpx.Client) -> None:
    r = client.post("/v1/chat", content=b'{"request": {"messages": [{"role": "user", '
                    b'"content": "hi"}]}}',
                    headers={"content-type": "Application/JSON; charset=\"UTF-8\""})
    assert r.status_code == 200, r.text


def test_unparseable_http_gets_the_error_shape(gateway: ThreadedServer) -> None:
    import socket

    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), data
    assert b"content-type: application/json" in head.lower()
    import json

    err = json.loads(body)["error"]
    assert err["type"] == "invalid_request" and err["request_id"].startswith("req_")


def test_admin_catalog_ids_checked_and_clashes_are_409(edge: ThreadedServer,
                                                        fake: FakeProvider) -> None:
    with _client(edge, Authorization=f"Bearer {ADMIN}") as c:
        for bad in ("模型", "small\u2028", " small", "x" * 200):
            r = c.post("/admin/v1/models", json={"id": bad, "provider": "fake-openai"})
            _error(r, 400, "invalid_request", "id")
        r = c.post("/admin/v1/models", json={"id": "new-model", "provider": "fake-openai",
                                             "aliases": ["small"]})
        _error(r, 409, "conflict", "alias 'small'", "already a model id")
        r = c.post("/admin/v1/models", json={"id": "ab", "provider": "fake-openai"})
        _error(r, 409, "conflict", "alias 'ab' collides")  # "ab" is an alias of the file
        r = c.post("/admin/v1/providers", json={"id": "prov/é", "type": "openai",
                                                "base_url": "http://127.0.0.1:9"})
        _error(r, 400, "invalid_request", "id")
        r = c.post("/admin/v1/models", json={"id": "meta-llama/Llama-3.1-8B-Instruct",
                                             "provider": "fake-openai"})
        assert r.status_code == 201, r.text
        assert c.delete("/admin/v1/models/meta-llama/Llama-3.1-8B-Instruct").status_code == 200
    r = httpx.post(f"{edge.url}/v1/chat", json={"request": {"messages": MSG,
                                                            "model_hint": "small"}})
    assert r.status_code == 200 and r.headers["x-tokenhub-model"] == "small"


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12)
_VALID = {
    "/v1/chat": {"request": {"messages": MSG, "model_hint": "small", "parameters": {},
                             "estimated_input_tokens": 5, "meta": {}, "stream": False},
                 "policy": {"mode": "cheap", "max_budget_usd": 1, "max_latency_ms": 9000,
                            "min_weight": 0},
                 "output_format": {"type": "text", "max_tokens": 5}},
    "/v1/chat/completions": {"model": "small", "messages": MSG, "temperature": 1, "top_p": 1,
                             "max_tokens": 5, "seed": 1, "stop": "x", "n": 1,
                             "stream_options": {}, "user": "u", "policy": {}},
    "/v1/plan": {"request": {"messages": MSG},
                 "orchestration": {"mode": "refine", "iterations": 0, "voters": 1,
                                   "primary_model_id": "small"}},
}


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


def _replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _replaced(copy[path[0]], path[1:], new)
    return copy


_CASES = [(route, p) for route, body in _VALID.items() for p in _paths(body)]


def test_arbitrary_json_in_any_field_is_never_a_5xx(client: httpx.Client) -> None:
    """Every field of each public body, replaced by any JSON value: an answer below 500
    (or the documented 502/503), in the error shape when it is an error."""

    @settings(max_examples=150, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=st.sampled_from(_CASES), value=_JSON)
    def run(case: tuple[str, tuple[Any, ...]], value: Any) -> None:
        route, path = case
        body = _replaced(_VALID[route], path, value)
        r = client.post(route, json=body)
        assert r.status_code < 500 or r.status_code in (502, 503), (route, path, r.text)
        if r.status_code >= 400:
            assert r.json()["error"]["request_id"] == r.headers["x-request-id"]

    run()
