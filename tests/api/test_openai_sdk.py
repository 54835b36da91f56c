"""The official openai SDK, unchanged, pointed at the gateway (sync and async, streaming)."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.fake_provider import FakeProvider
from tests.support.server import ThreadedServer


def _client(gateway: ThreadedServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0,
                         http_client=httpx.Client(trust_env=False))


def _aclient(gateway: ThreadedServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0,
                              http_client=httpx.AsyncClient(trust_env=False))


@pytest.mark.parametrize(("model", "upstream"), [
    ("small", "small-up"), ("medium", "medium-up"), ("claude", "claude-up")])
def test_sync_completion(gateway: ThreadedServer, fake: FakeProvider, model: str,
                         upstream: str) -> None:
    with _client(gateway) as client:
        raw = client.chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": "hi there"}], temperature=0.1,
            seed=7, stop=["\n\n"])
        completion = raw.parse()
    assert completion.choices[0].message.content == f"[{upstream}] hi there"
    assert completion.model == model
    assert completion.usage is not None and completion.usage.total_tokens > 0
    assert raw.headers["x-tokenhub-model"] == model
    assert raw.headers["x-tokenhub-executor"] == "local"
    params = fake.calls(upstream)[0]["params"]
    if upstream == "claude-up":
        assert params["stop_sequences"] == ["\n\n"]
    else:
        assert params["seed"] == 7 and params["stop"] == ["\n\n"]


@pytest.mark.parametrize(("model", "upstream"), [("small", "small-up"), ("claude", "claude-up")])
def test_sync_streaming(gateway: ThreadedServer, model: str, upstream: str) -> None:
    with _client(gateway) as client:
        stream = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "stream please"}], stream=True,
            stream_options={"include_usage": True})
        chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == f"[{upstream}] stream please"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"


async def test_async_completion_and_stream(gateway: ThreadedServer) -> None:
    async with _aclient(gateway) as client:
        completion = await client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "async hi"}])
        assert completion.choices[0].message.content.endswith("async hi")
        stream = await client.chat.completions.create(
            model="medium", messages=[{"role": "user", "content": "async stream"}], stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "[medium-up] async stream"


def test_models_list(gateway: ThreadedServer) -> None:
    with _client(gateway) as client:
        ids = {m.id for m in client.models.list()}
    assert {"small", "medium", "claude", "large", "ab", "auto"} <= ids


def test_unknown_model_is_a_clean_sdk_error(gateway: ThreadedServer) -> None:
    with _client(gateway) as client, pytest.raises(openai.NotFoundError) as exc:
        client.chat.completions.create(model="gpt-nope",
                                       messages=[{"role": "user", "content": "x"}])
    assert "gpt-nope" in str(exc.value)
