"""The provider-call activity, run by Temporal's ActivityEnvironment against the fake
provider: one attempt per execution, failures encoded by the failure codec."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.provider import ProviderActivities
from engine.failures import AttemptFailure, attempt_from_failure
from shared.config import Settings, load_catalog
from shared.orchestration.ports import ModelCall
from shared.providers.registry import ProviderRegistry
from tests.factories import spec
from tests.fake_provider import FakeProvider

SMALL = spec("small", "fake-openai", upstream="small-up", inp=0.001, out=0.002)
CLAUDE = spec("claude", "fake-anthropic", upstream="claude-up")


@pytest.fixture
async def activities(fake: FakeProvider, config_file: Path) -> AsyncIterator[ProviderActivities]:
    settings = Settings(_env_file=None, config=config_file)  # type: ignore[call-arg]
    registry = ProviderRegistry(load_catalog(settings), settings)
    yield ProviderActivities(registry.get, attempt_timeout_s=10)
    await registry.aclose()


def _env(*, attempt: int = 1, heartbeat_s: float | None = None) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info, attempt=attempt,
        heartbeat_timeout=timedelta(seconds=heartbeat_s) if heartbeat_s else None)
    return env


def _call(model: Any = SMALL, text: str = "hello activity") -> ModelCall:
    return ModelCall(request_id="req-act", model=model,
                     messages=[{"role": "user", "content": text}], step="chat")


async def test_an_answer_carries_tokens_cost_and_the_try_number(
        activities: ProviderActivities, fake: FakeProvider) -> None:
    res = await _env(attempt=2).run(activities.call_model, _call())
    assert res.completion.content == "[small-up] hello activity"
    a = res.attempt
    assert (a.outcome, a.tries, a.model, a.provider) == ("ok", 2, "small", "fake-openai")
    assert a.input_tokens == res.completion.usage.prompt_tokens > 0
    assert a.output_tokens == res.completion.usage.completion_tokens > 0
    assert a.cost_usd == res.cost_usd == SMALL.cost_usd(a.input_tokens, a.output_tokens) > 0
    assert fake.count("small-up") == 1


async def test_a_5xx_is_one_retryable_transient_failure(activities: ProviderActivities,
                                                        fake: FakeProvider) -> None:
    fake.script("small-up", [{"status": 503}])
    with pytest.raises(ApplicationError) as info:
        await _env(attempt=3).run(activities.call_model, _call())
    err = info.value
    assert err.type == "transient" and not err.non_retryable
    details = AttemptFailure.model_validate(err.details[0])
    assert details.status == 503 and details.tries == 3 and details.latency_ms > 0
    assert fake.count("small-up") == 1  # one attempt: retries belong to Temporal


async def test_a_429_is_not_retried_and_says_when_to_come_back(
        activities: ProviderActivities, fake: FakeProvider) -> None:
    fake.script("claude-up", [{"status": 429, "retry_after": 7}])
    with pytest.raises(ApplicationError) as info:
        await _env().run(activities.call_model, _call(CLAUDE))
    err = info.value
    assert err.type == "rate_limited" and err.non_retryable
    attempt = attempt_from_failure(_call(CLAUDE), err)
    assert (attempt.outcome, attempt.status, attempt.retry_after) == ("rate_limited", 429, 7.0)


async def test_an_unknown_provider_is_fatal_without_a_call(activities: ProviderActivities,
                                                           fake: FakeProvider) -> None:
    ghost = spec("ghost", "no-such-provider")
    with pytest.raises(ApplicationError) as info:
        await _env().run(activities.call_model, _call(ghost))
    assert info.value.type == "fatal" and info.value.non_retryable
    assert "no-such-provider" in info.value.message
    assert fake.calls() == []


async def test_a_slow_call_heartbeats(activities: ProviderActivities,
                                      fake: FakeProvider) -> None:
    fake.script("small-up", [{"delay_ms": 700}])
    env = _env(heartbeat_s=0.3)
    beats: list[Any] = []
    env.on_heartbeat = lambda *details: beats.append(details)
    res = await env.run(activities.call_model, _call())
    assert res.attempt.outcome == "ok"
    assert len(beats) >= 3  # every heartbeat_timeout / 3 while the provider thinks
