"""Policy fields over HTTP: ``allow_escalation`` (no failover to another model),
``min_context_size``, and each call's timeout bounded by the latency budget left; the
providers' usual key variables (OPENAI_API_KEY, ANTHROPIC_API_KEY)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from shared.config import Settings, load_catalog
from tests.fake_provider import FakeProvider


def _chat(client: httpx.Client, policy: dict[str, Any], model: str = "auto") -> httpx.Response:
    return client.post("/v1/chat", json={
        "request": {"messages": [{"role": "user", "content": "hi"}], "model_hint": None
                    if model == "auto" else model},
        "policy": policy})


def test_allow_escalation_false_never_fails_over(client: httpx.Client,
                                                 fake: FakeProvider) -> None:
    fake.script("large-up", [{"status": 400}])
    r = _chat(client, {"mode": "high_confidence", "allow_escalation": False})
    assert r.status_code == 502, r.text
    assert [a["model"] for a in r.json()["error"]["attempts"]] == ["large"]
    fake.script("large-up", [{"status": 400}])
    r = _chat(client, {"mode": "high_confidence"})  # default: fails over
    assert r.status_code == 200 and r.json()["negotiated_model"] != "large"


def test_min_context_size_excludes_small_windows(client: httpx.Client) -> None:
    r = _chat(client, {"mode": "cheap", "min_context_size": 100000})
    assert r.status_code == 200 and r.json()["negotiated_model"] in {"claude", "large"}


def test_call_timeout_is_bounded_by_the_latency_budget(client: httpx.Client,
                                                       fake: FakeProvider) -> None:
    fake.script("small-up", [{"delay_ms": 3000}] * 3)
    r = _chat(client, {"max_latency_ms": 400, "allow_escalation": False}, model="small")
    assert r.status_code == 502, r.text
    attempt = r.json()["error"]["attempts"][0]
    assert attempt["outcome"] == "transient" and "Timeout" in attempt["message"]


@pytest.mark.parametrize("tokenhub, plain, expected", [
    (None, "sk-plain-openai", "sk-plain-openai"),
    ("sk-tokenhub", "sk-plain-openai", "sk-tokenhub"),  # TOKENHUB_* wins
])
def test_usual_provider_key_variables_are_honoured(monkeypatch: pytest.MonkeyPatch,
                                                   tokenhub: str | None, plain: str,
                                                   expected: str) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", plain)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-plain")
    if tokenhub:
        monkeypatch.setenv("TOKENHUB_OPENAI_API_KEY", tokenhub)
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.openai_api_key is not None and s.openai_api_key.get_secret_value() == expected
    assert s.anthropic_api_key is not None
    assert {p.id for p in load_catalog(s).providers} == {"openai", "anthropic"}
    assert s.masked()["openai_api_key"] == "********"
