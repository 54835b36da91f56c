"""Issue 16: ``POST/GET /v1/feedback`` through the gateway (scope ``feedback``, own requests
only, one rating per source unless replaced, bad input named) and the reward row it adds."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.logrows import wait_rows
from tests.api.test_security_api import ADMIN, MSG, issue
from tests.fake_provider import FakeProvider
from tests.support.server import ThreadedServer


@pytest.fixture
def srv(gateway_factory: Any) -> ThreadedServer:
    s: ThreadedServer = gateway_factory(require_api_key=True, admin_token=ADMIN,
                                        rate_limit_rps=1000, rate_limit_burst=1000,
                                        feedback_weight=2.0)
    return s


def client(srv: ThreadedServer, token: str) -> httpx.Client:
    return httpx.Client(base_url=srv.url, trust_env=False, timeout=30,
                        headers={"Authorization": f"Bearer {token}"})


def chat(c: httpx.Client) -> str:
    r = c.post("/v1/chat", json={"request": {"messages": MSG, "model_hint": "small"}})
    assert r.status_code == 200, r.text
    rid: str = r.json()["request_id"]
    assert r.headers["x-request-id"] == rid  # the handle
    return rid


def test_a_rating_becomes_a_weighted_reward_of_the_model_that_answered(
        srv: ThreadedServer, fake: FakeProvider) -> None:
    token, key_id = issue(srv, scopes=["chat", "feedback"])
    with client(srv, token) as c:
        rid = chat(c)
        r = c.post("/v1/feedback", json={"request_id": rid, "score": 0.8, "comment": "good"})
        assert r.status_code == 201, r.text
        got = r.json()
        assert (got["model"], got["size_bucket"], got["score"], got["weight"]) == \
            ("small", "small", 0.8, 2.0)
        assert got["source"] == "user" and got["comment"] == "good"
        # a second rating from the same source: 409, unless replaced
        assert c.post("/v1/feedback", json={"request_id": rid, "thumbs": "down"}
                      ).status_code == 409
        r = c.post("/v1/feedback", json={"request_id": rid, "thumbs": "down", "replace": True})
        assert r.status_code == 200 and r.json()["score"] == 0.0
        # another source rates independently
        r = c.post("/v1/feedback", json={"request_id": rid, "thumbs": "up", "source": "ci"})
        assert r.status_code == 201
        listed = c.get("/v1/feedback", params={"request_id": rid}).json()
    assert [(d["source"], d["score"], d["thumbs"]) for d in listed["data"]] == \
        [("user", 0.0, "down"), ("ci", 1.0, "up")]
    rewards = wait_rows(srv, rid, count=3, table="rewards")
    by_source = {r["source"]: (r["model"], r["reward"], r["weight"]) for r in rewards}
    assert by_source == {None: ("small", pytest.approx(rewards[0]["reward"]), 1.0),
                         "feedback:user": ("small", 0.0, 2.0),
                         "feedback:ci": ("small", 1.0, 2.0)}
    with httpx.Client(base_url=srv.url, trust_env=False,
                      headers={"Authorization": f"Bearer {ADMIN}"}) as a:
        page = a.get("/admin/v1/rewards", params={"model": "small"}).json()["data"]
    assert {r["source"] for r in page} == {None, "feedback:user", "feedback:ci"}
    assert key_id


def test_a_key_rates_only_its_own_requests_and_needs_the_scope(
        srv: ThreadedServer, fake: FakeProvider) -> None:
    mine, _ = issue(srv, scopes=["chat", "feedback"])
    other, _ = issue(srv, scopes=["chat", "feedback"])
    chat_only, _ = issue(srv, scopes=["chat"])
    with client(srv, mine) as c:
        rid = chat(c)
    with client(srv, other) as c:
        assert c.post("/v1/feedback", json={"request_id": rid, "score": 1}).status_code == 404
        assert c.get("/v1/feedback", params={"request_id": rid}).status_code == 404
        r = c.post("/v1/feedback", json={"request_id": "no-such-request", "score": 1})
        assert r.status_code == 404 and r.json()["error"]["type"] == "not_found"
    with client(srv, chat_only) as c:
        assert c.post("/v1/feedback", json={"request_id": rid, "score": 1}).status_code == 403


@pytest.mark.parametrize(("body", "named"), [
    ({"score": 1.5}, "score"), ({"score": -0.1}, "score"),
    ({"score": 0.5, "thumbs": "up"}, "score, thumbs"), ({}, "score, thumbs"),
    ({"thumbs": "sideways"}, "thumbs"), ({"score": 1, "source": "bad source!"}, "source")])
def test_bad_feedback_is_a_400_naming_the_field(srv: ThreadedServer, fake: FakeProvider,
                                                body: dict[str, Any], named: str) -> None:
    token, _ = issue(srv, scopes=["feedback"])
    with client(srv, token) as c:
        r = c.post("/v1/feedback", json={"request_id": "r-1", **body})
    assert r.status_code == 400, r.text
    assert named in r.json()["error"]["message"]
