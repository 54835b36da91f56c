"""Issue 13, class 3: secrets never leak, whatever an upstream echoes or an exception says.

The fake provider's ``echo_auth`` step answers with an error whose text repeats the
credential headers it was sent (as some upstreams do)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.errors import ProviderError
from shared.orchestration.calls import failed_attempt
from shared.orchestration.ports import ModelCall
from shared.providers.anthropic import AnthropicAdapter
from shared.providers.base import ProviderCall
from shared.providers.http import build_client
from shared.providers.openai import OpenAIAdapter
from shared.security.redact import SecretRegistry, install_redaction, redact
from shared.telemetry.logging import JsonFormatter
from tests.api.logrows import wait_rows
from tests.factories import spec
from tests.fake_provider import FakeProvider
from tests.support.server import ThreadedServer

# shapeless keys: only the registry of live secrets can recognise them
OPENAI_KEY = "plainOpenAIkey0123456789"
ANTHROPIC_KEY = "plainAnthropicKey9876543210"
MSG = [{"role": "user", "content": "hi"}]


@pytest.fixture
def leaky(gateway_factory: Any, monkeypatch: pytest.MonkeyPatch, fake: FakeProvider
          ) -> ThreadedServer:
    monkeypatch.setenv("FAKE_OPENAI_KEY", OPENAI_KEY)
    monkeypatch.setenv("FAKE_ANTHROPIC_KEY", ANTHROPIC_KEY)
    fake.script("*", [{"kind": "echo_auth", "status": 401}] * 50)
    srv: ThreadedServer = gateway_factory(log_bodies=True)
    return srv


def test_an_upstream_echoing_its_key_leaks_it_nowhere(leaky: ThreadedServer,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    rids = []
    with httpx.Client(base_url=leaky.url, trust_env=False, timeout=30) as c:
        for hint in ("small", "claude"):
            r = c.post("/v1/chat", json={"request": {"messages": MSG, "model_hint": hint}})
            assert r.status_code == 502, r.text
            attempts = r.json()["error"]["attempts"]
            assert any("invalid credentials" in a["message"] for a in attempts)
            assert OPENAI_KEY not in r.text and ANTHROPIC_KEY not in r.text
            rids.append(r.headers["x-request-id"])
    for rid in rids:
        rows = wait_rows(leaky, rid)
        assert rows and OPENAI_KEY not in json.dumps(rows) and ANTHROPIC_KEY not in json.dumps(rows)
    logged = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    assert OPENAI_KEY not in logged and ANTHROPIC_KEY not in logged


_KEY = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~+/=",
               min_size=6, max_size=64)


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=_KEY, wire=st.sampled_from(["openai", "anthropic"]))
def test_no_generated_key_survives_an_echoing_upstream(fake_server: FakeProvider, key: str,
                                                        wire: str) -> None:
    """A key registered as a live secret never appears in the ProviderError, the Attempt
    (response, stored row, workflow history) or a logged traceback of that error."""
    registry = SecretRegistry()
    registry.add(key)
    install_redaction(registry)
    fake_server.script("*", [{"kind": "echo_auth", "status": 401}])

    async def call() -> ProviderError:
        client = build_client(connect_timeout_s=5, read_timeout_s=10, max_connections=2)
        adapter: OpenAIAdapter | AnthropicAdapter = (
            OpenAIAdapter("p", client=client, base_urls=[fake_server.url], api_key=key)
            if wire == "openai" else
            AnthropicAdapter("p", client=client, base_url=fake_server.url, api_key=key))
        try:
            await adapter.complete(ProviderCall(upstream_model="m", messages=MSG,
                                                parameters={}, request_id="r"))
        except ProviderError as err:
            return err
        finally:
            await adapter.aclose()
        raise AssertionError("the upstream refused the key: an error was expected")

    err = asyncio.run(call())
    assert "invalid credentials" in err.message and key not in err.message
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("tokenhub.test.echo")
    log.addHandler(handler)
    try:
        try:
            raise RuntimeError(f"while calling with {key}") from err
        except RuntimeError:
            log.exception("call failed for %s", key)
    finally:
        log.removeHandler(handler)
    assert "RuntimeError" in stream.getvalue() and key not in stream.getvalue()
    call = ModelCall(request_id="r", model=spec("m"), messages=MSG)
    attempt = failed_attempt(call, ProviderError(f"raw {key}", error_class="fatal"),
                             tries=1, latency_ms=1.0)
    assert attempt.message is not None and key not in attempt.message


@pytest.mark.parametrize("token", [
    "sk-proj-AbCdEf0123456789", "sk-ant-api03-AbCdEf0123456789", "thk_AbCdEf0123456789xyz",
    "AKIAIOSFODNN7EXAMPLE", "AIzaSyA1234567890abcdefghijklmnopqrstu",
    "ghp_0123456789abcdefghijABCDEFGHIJ012345", "xoxb-1234567890-abcdefghij",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl",
])
def test_token_shapes_are_masked_without_being_registered(token: str) -> None:
    for text in (f"upstream said: {token} is invalid", f"Authorization: Bearer {token}",
                 f'{{"api_key": "{token}"}}', f"aws_secret_access_key={token}"):
        assert token not in redact(text), text


def test_uncaught_exceptions_are_redacted_on_stderr(tmp_path: Path) -> None:
    """A process entrypoint (configure_logging): an uncaught exception carrying a secret
    is logged through the redacting record factory, traceback included."""
    script = textwrap.dedent("""
        import threading
        from shared.security.redact import SecretRegistry, install_redaction
        from shared.telemetry.logging import configure_logging
        reg = SecretRegistry()
        reg.add("vault-password-in-an-exception")
        install_redaction(reg)
        configure_logging("INFO")
        def worker():
            raise ValueError("thread saw vault-password-in-an-exception")
        t = threading.Thread(target=worker, name="w")
        t.start(); t.join()
        raise RuntimeError("main saw vault-password-in-an-exception")
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 1
    assert "vault-password-in-an-exception" not in proc.stderr + proc.stdout
    assert "RuntimeError: main saw ***" in proc.stderr
    assert "ValueError: thread saw ***" in proc.stderr
