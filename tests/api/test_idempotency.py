"""A repeated X-Request-ID on the in-process path: same body → the first result (no second
provider call, in any gateway process); different body → 409; streams are not replayed."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import httpx

from tests.fake_provider import FakeProvider
from tests.support.server import ThreadedServer

MSG = [{"role": "user", "content": "once only"}]
BODY = {"request": {"messages": MSG, "model_hint": "small"}}


def _rid() -> str:
    return f"idem-{uuid.uuid4().hex}"


def _post(url: str, rid: str, body: Any, path: str = "/v1/chat") -> httpx.Response:
    with httpx.Client(base_url=url, trust_env=False, timeout=30) as c:
        return c.post(path, json=body, headers={"X-Request-ID": rid})


def test_a_repeat_gets_the_first_result_without_a_second_call(
        gateway: ThreadedServer, fake: FakeProvider) -> None:
    rid = _rid()
    first = _post(gateway.url, rid, BODY)
    second = _post(gateway.url, rid, BODY)
    assert first.status_code == second.status_code == 200, second.text
    assert first.json() == second.json()
    assert fake.count("small-up") == 1
    with httpx.Client(base_url=gateway.url, trust_env=False) as c:
        metrics = c.get("/metrics").text
    # the repeat is neither charged nor counted again
    assert 'tokenhub_executor_total{executor="local",kind="chat"} 1.0' in metrics
    # without an X-Request-ID nothing is deduplicated
    with httpx.Client(base_url=gateway.url, trust_env=False, timeout=30) as c:
        assert c.post("/v1/chat", json=BODY).status_code == 200
        assert c.post("/v1/chat", json=BODY).status_code == 200
    assert fake.count("small-up") == 3


def test_a_repeat_with_another_body_is_a_409_naming_the_id(
        gateway: ThreadedServer, fake: FakeProvider) -> None:
    rid = _rid()
    assert _post(gateway.url, rid, BODY).status_code == 200
    other = {"request": {"messages": [{"role": "user", "content": "something else"}]}}
    r = _post(gateway.url, rid, other)
    assert r.status_code == 409
    err = r.json()["error"]
    assert err["type"] == "conflict" and rid in err["message"]
    # same body on another route is another request too
    r = _post(gateway.url, rid, {"model": "small", "messages": MSG}, "/v1/chat/completions")
    assert r.status_code == 409
    assert fake.count() == 1


def test_concurrent_duplicates_make_one_provider_call(gateway: ThreadedServer,
                                                      fake: FakeProvider) -> None:
    fake.script("small-up", [{"delay_ms": 400}])
    rid = _rid()
    results: list[httpx.Response] = []

    def send() -> None:
        results.append(_post(gateway.url, rid, BODY))

    threads = [threading.Thread(target=send) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status_code for r in results] == [200, 200, 200]
    assert len({r.text for r in results}) == 1
    assert fake.count("small-up") == 1


def test_a_failed_run_is_replayed_as_it_failed(gateway: ThreadedServer,
                                               fake: FakeProvider) -> None:
    fake.script("*", [{"status": 401}] * 8)
    rid = _rid()
    first = _post(gateway.url, rid, BODY)
    assert first.status_code == 502
    calls = fake.count()
    second = _post(gateway.url, rid, BODY)
    assert second.status_code == 502
    assert second.json()["error"]["type"] == first.json()["error"]["type"]
    assert fake.count() == calls


def test_another_gateway_process_replays_too(gateway_factory: Any,
                                             fake: FakeProvider) -> None:
    one, two = gateway_factory(), gateway_factory()  # one database, two gateways
    rid = _rid()
    first = _post(one.url, rid, BODY)
    second = _post(two.url, rid, BODY)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert fake.count("small-up") == 1


def test_a_streamed_request_is_not_replayed(gateway: ThreadedServer,
                                            fake: FakeProvider) -> None:
    rid = _rid()
    body = {"request": {"messages": MSG, "stream": True}}
    with httpx.Client(base_url=gateway.url, trust_env=False, timeout=30) as c:
        with c.stream("POST", "/v1/chat", json=body, headers={"X-Request-ID": rid}) as r:
            assert r.status_code == 200
            "".join(r.iter_text())
        again = c.post("/v1/chat", json=body, headers={"X-Request-ID": rid})
    assert again.status_code == 409
    assert "not replayed" in again.json()["error"]["message"]
    assert fake.count() == 1


def test_ids_are_fresh_again_after_the_window(gateway_factory: Any,
                                              fake: FakeProvider) -> None:
    srv = gateway_factory(idempotency_window_s=0.05)
    rid = _rid()
    assert _post(srv.url, rid, BODY).status_code == 200
    time.sleep(0.1)
    assert _post(srv.url, rid, BODY).status_code == 200
    assert fake.count("small-up") == 2


def test_requests_without_a_client_id_never_touch_the_idempotency_table(
        gateway: ThreadedServer, fake: FakeProvider) -> None:
    """Only a client-chosen X-Request-ID is a promise of idempotency; the gateway's own ids
    cost nothing (a claim in the database per request was a 7× slowdown, caught by the
    benchmark)."""
    import sqlite3

    from tests.api.logrows import _db_path

    with httpx.Client(base_url=gateway.url, trust_env=False, timeout=30) as c:
        for _ in range(3):
            assert c.post("/v1/chat", json=BODY).status_code == 200
    rid = _rid()
    assert _post(gateway.url, rid, BODY).status_code == 200
    con = sqlite3.connect(_db_path(gateway))
    try:
        ids = [r[0] for r in con.execute("SELECT request_id FROM idempotency")]
    finally:
        con.close()
    assert ids == [rid]
