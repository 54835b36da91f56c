"""A client's ``estimated_input_tokens`` can raise the gateway's estimate, never lower it:
not the budget reservation, not the context-window check (issue 13)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.test_security_api import issue
from tests.fake_provider import FakeProvider
from tests.support.server import ThreadedServer

ADMIN = "admin-token-for-tests-0123456789"


def _post(srv: ThreadedServer, token: str | None, content: str, **request: Any
          ) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {"request": {"messages": [{"role": "user", "content": content}], **request}}
    with httpx.Client(base_url=srv.url, trust_env=False, timeout=30) as c:
        return c.post("/v1/chat", json=body, headers=headers)


def test_zero_estimate_does_not_skip_the_context_check(gateway: ThreadedServer,
                                                       fake: FakeProvider) -> None:
    prompt = "x" * 1_000_000  # ~250k tokens: larger than every model's window (200k)
    for explicit in (None, 0, 1):
        r = _post(gateway, None, prompt, estimated_input_tokens=explicit)
        assert r.status_code == 400, (explicit, r.text)
        assert r.json()["error"]["type"] == "context_length_exceeded"
    assert fake.calls() == []  # never sent upstream


def test_zero_estimate_does_not_lower_the_reservation(gateway_factory: Any,
                                                      fake: FakeProvider) -> None:
    srv: ThreadedServer = gateway_factory(require_api_key=True, admin_token=ADMIN,
                                          rate_limit_rps=1000, rate_limit_burst=1000)
    prompt = "x" * 40_000  # 10k tokens on "claude" at $0.003/1k: ~$0.03 in, $0.008 out
    token, _ = issue(srv, monthly_budget_usd=0.01)
    for explicit in (None, 0):
        r = _post(srv, token, prompt, model_hint="claude", estimated_input_tokens=explicit)
        assert r.status_code == 403, r.text
        assert r.json()["error"]["type"] == "budget_exceeded"
    assert fake.calls() == []
    # and a larger figure from the client raises the reservation
    r = _post(srv, token, "hi", model_hint="claude", estimated_input_tokens=2_000)
    assert r.status_code == 403 and r.json()["error"]["type"] == "budget_exceeded"
    assert _post(srv, token, "hi", model_hint="claude").status_code == 200
