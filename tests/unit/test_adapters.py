"""Provider adapters against the fake provider's real wire formats: one attempt each."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from shared.contracts import StreamChunk
from shared.errors import ProviderError
from shared.providers.anthropic import AnthropicAdapter
from shared.providers.base import ProviderAdapter, ProviderCall
from shared.providers.http import build_client, parse_retry_after
from shared.providers.openai import OpenAIAdapter, VLLMAdapter
from shared.providers.simulated import SimulatedAdapter
from tests.fake_provider import FakeProvider

CALL = ProviderCall(upstream_model="up", messages=[{"role": "user", "content": "hello"}],
                    parameters={"temperature": 0.2, "max_tokens": 20, "top_p": 0.9,
                                "custom_flag": True})


@pytest.fixture(params=["openai", "vllm", "anthropic"])
async def adapter(request: pytest.FixtureRequest,
                  fake: FakeProvider) -> AsyncIterator[ProviderAdapter]:
    client = build_client(connect_timeout_s=2, read_timeout_s=5, max_connections=8)
    a: ProviderAdapter
    if request.param == "anthropic":
        a = AnthropicAdapter("p", client=client, base_url=fake.url, api_key="sk-ant-x")
    elif request.param == "vllm":
        a = VLLMAdapter("p", client=client, base_urls=[fake.url, fake.url])
    else:
        a = OpenAIAdapter("p", client=client, base_urls=[fake.url], api_key="sk-x")
    yield a
    await a.aclose()


async def _stream(a: ProviderAdapter) -> tuple[str, Any]:
    """The text, and a chunk holding the last finish_reason and usage seen."""
    text, finish, usage = "", None, None
    async for chunk in a.stream(CALL):
        text += chunk.delta
        finish = chunk.finish_reason or finish
        usage = chunk.usage or usage
    return text, StreamChunk(finish_reason=finish, usage=usage)


async def test_complete_forwards_parameters_and_reports_usage(adapter: ProviderAdapter,
                                                              fake: FakeProvider) -> None:
    out = await adapter.complete(CALL)
    assert out.content == "[up] hello"
    assert out.usage.prompt_tokens > 0 and out.usage.completion_tokens > 0
    assert out.finish_reason == "stop"
    (call,) = fake.calls()
    assert call["params"]["temperature"] == 0.2 and call["params"]["max_tokens"] == 20
    assert call["params"]["top_p"] == 0.9
    if adapter.type != "anthropic":
        assert call["params"]["custom_flag"] is True  # unknown keys forwarded
    assert call["auth"] == (adapter.type != "vllm")


async def test_stream_yields_text_then_finish_and_usage(adapter: ProviderAdapter) -> None:
    text, last = await _stream(adapter)
    assert text == "[up] hello"
    assert last is not None and last.finish_reason == "stop"
    assert last.usage is not None and last.usage.completion_tokens > 0


@pytest.mark.parametrize(("step", "error_class", "status"), [
    ({"status": 429, "retry_after": 7}, "rate_limited", 429),
    ({"status": 500}, "transient", 500),
    ({"status": 503}, "transient", 503),
    ({"kind": "context_overflow"}, "context_overflow", 400),
    ({"kind": "context_overflow", "status": 413}, "context_overflow", 413),
    ({"status": 401}, "fatal", 401),
    ({"status": 404}, "fatal", 404),
    ({"kind": "malformed"}, "transient", 200),
])
async def test_error_classification(adapter: ProviderAdapter, fake: FakeProvider,
                                    step: dict[str, Any], error_class: str, status: int) -> None:
    for _ in range(2):
        fake.script("up", [step])
    with pytest.raises(ProviderError) as exc:
        await adapter.complete(CALL)
    assert exc.value.error_class == error_class and exc.value.status == status
    if error_class == "rate_limited":
        assert exc.value.retry_after == 7
    assert "sk-" not in exc.value.message
    if step.get("kind") != "malformed":  # the same classes when streaming
        with pytest.raises(ProviderError) as exc2:
            await _stream(adapter)
        assert exc2.value.error_class == error_class
    assert fake.count("up") == (2 if step.get("kind") != "malformed" else 1)  # no retries


async def test_stream_cut_midway_is_transient(adapter: ProviderAdapter,
                                              fake: FakeProvider) -> None:
    fake.script("up", [{"kind": "cut_stream"}])
    with pytest.raises(ProviderError) as exc:
        await _stream(adapter)
    assert exc.value.error_class == "transient"


async def test_connection_refused_and_timeout_are_transient() -> None:
    client = build_client(connect_timeout_s=0.5, read_timeout_s=0.5, max_connections=2)
    a = OpenAIAdapter("dead", client=client, base_urls=["http://127.0.0.1:9"])
    with pytest.raises(ProviderError) as exc:
        await a.complete(CALL)
    assert exc.value.error_class == "transient"
    await a.aclose()


async def test_read_timeout_is_transient(fake: FakeProvider) -> None:
    fake.script("up", [{"delay_ms": 800}])
    client = build_client(connect_timeout_s=1, read_timeout_s=0.2, max_connections=2)
    a = OpenAIAdapter("slow", client=client, base_urls=[fake.url])
    with pytest.raises(ProviderError) as exc:
        await a.complete(CALL)
    assert exc.value.error_class == "transient"
    await a.aclose()


async def test_probe(adapter: ProviderAdapter) -> None:
    res = await adapter.probe()
    assert res.ok and "fake-small" in res.models and res.latency_ms >= 0


async def test_simulated_provider_needs_no_network() -> None:
    sim = SimulatedAdapter(delay_s=0)
    out = await sim.complete(CALL)
    assert out.content.startswith("[simulated up]") and out.usage.completion_tokens > 0
    chunks = [c async for c in sim.stream(CALL)]
    assert "".join(c.delta for c in chunks) == out.content
    assert chunks[-1].finish_reason == "stop"


def test_retry_after_forms() -> None:
    assert parse_retry_after(httpx.Headers({"retry-after": "12"})) == 12
    assert parse_retry_after(httpx.Headers({"retry-after-ms": "1500"})) == 1.5
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    assert parse_retry_after(httpx.Headers({"retry-after": date}), now=1445412470) == 10
    assert parse_retry_after(httpx.Headers({})) is None


async def test_long_stream_lines(fake: FakeProvider) -> None:
    """SSE lines far over aiohttp's default buffer still stream; a line over the 1 MiB
    limit is a classified (transient, malformed) error, not a crash."""
    client = build_client(connect_timeout_s=2, read_timeout_s=10, max_connections=2)
    a = OpenAIAdapter("p", client=client, base_urls=[fake.url])
    big = "x" * 900_000  # three chunks of ~300 KB: lines of ~300 KB
    fake.script("up", [{"kind": "ok", "content": big}])
    text, _ = await _stream(a)
    assert text == big
    fake.script("up", [{"kind": "ok", "content": "y" * 4_000_000}])  # lines of ~1.3 MB
    with pytest.raises(ProviderError) as exc:
        await _stream(a)
    assert exc.value.error_class == "transient" and "too long" in exc.value.message
    await a.aclose()


async def test_a_closed_client_fails_classified(fake: FakeProvider) -> None:
    """A retry still holding a replaced provider's adapter gets a transient ProviderError
    (not a crash, and no new connection pool left open)."""
    a = OpenAIAdapter("p", client=build_client(connect_timeout_s=2, read_timeout_s=5,
                                               max_connections=2), base_urls=[fake.url])
    assert (await a.complete(CALL)).content
    await a.aclose()
    with pytest.raises(ProviderError) as exc:
        await a.complete(CALL)
    assert exc.value.error_class == "transient" and "closed" in exc.value.message
    with pytest.raises(ProviderError):
        await _stream(a)
    assert not (await a.probe()).ok
