"""Routing rules of issue 21 (pure): latency as an eligibility rule, call timeouts bounded by
the latency budget, min_context_size, allow_escalation, model kinds, the routing config."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from shared.contracts import Attempt, ChatBody, Completion, Executor
from shared.orchestration.calls import call_timeout
from shared.orchestration.chat import complete_with_failover
from shared.orchestration.ports import ModelCall, ModelCallResult, RecordBatch
from shared.routing.config import RoutingConfig
from shared.routing.engine import route
from shared.routing.simulate import simulate
from shared.routing.stats import StatsWindow
from shared.routing.types import ModelStats, ResolvedPolicy, RoutingContext
from tests.factories import chat_input, spec

FAST = spec("fast", "p1", ctx=8000, weight=3)
SLOW = spec("slow", "p2", ctx=32000, weight=9, inp=0.01, out=0.02)
NEW = spec("new", "p3", ctx=128000, weight=5)
EMB = spec("emb", "p4", ctx=8000).model_copy(update={"kind": "embedding"})


def decide(*, stats: dict[str, ModelStats] | None = None, max_out: int | None = None,
           kind: str = "chat", **pol: object):
    ctx = RoutingContext(models=[FAST, SLOW, NEW, EMB], now=0.0, stats=stats or {})
    return route(messages=[], estimated_input_tokens=100, model_hint=None,
                 policy=ResolvedPolicy(**pol), ctx=ctx,  # type: ignore[arg-type]
                 max_output_tokens=max_out, rng=random.Random(0), kind=kind)


def test_observed_latency_over_the_budget_is_ineligible_and_unobserved_models_pass() -> None:
    stats = {"fast": ModelStats(latency_ms=200, samples=5),
             "slow": ModelStats(latency_ms=4000, samples=5)}
    d = decide(stats=stats, max_latency_ms=1000)
    assert {c.model.id for c in d.candidates} == {"fast", "new"}  # "new": no observations
    why = {e.model_id: e.reason for e in d.excluded}
    assert "expected latency 4000 ms" in why["slow"] and "max_latency_ms 1000" in why["slow"]


def test_latency_is_scaled_up_to_the_expected_output_never_down() -> None:
    stats = {"fast": ModelStats(latency_ms=300, samples=5, output_tokens=100)}
    # 512 assumed output tokens vs 100 observed: 300 × 5.12 = 1536 ms > 1000
    assert "fast" in {e.model_id for e in decide(stats=stats, max_latency_ms=1000).excluded}
    # a short answer (max_tokens 10) is not assumed faster than observed: 300 ms passes
    d = decide(stats=stats, max_latency_ms=1000, max_out=10)
    assert "fast" in {c.model.id for c in d.candidates}


def test_latency_exclusion_shows_in_the_simulation() -> None:
    body = ChatBody.model_validate({"request": {"messages": [{"role": "user", "content": "x"}]},
                                    "policy": {"max_latency_ms": 500}})
    ctx = RoutingContext(models=[FAST, SLOW], now=0.0,
                         stats={"slow": ModelStats(latency_ms=900, samples=3)})
    out = simulate(body, defaults=ResolvedPolicy(), ctx=ctx, rng=random.Random(0))
    assert [c["model"] for c in out["candidates"]] == ["fast"]
    assert out["excluded"][0]["model_id"] == "slow"
    assert "expected latency 900 ms" in out["excluded"][0]["reason"]


def test_stats_window_tracks_mean_output_tokens() -> None:
    w = StatsWindow()
    w.observe("m", True, 100.0, 1.0, 50)
    w.observe("m", True, 300.0, 2.0, 150)
    w.observe("m", False, 9999.0, 3.0, 0)
    s = w.snapshot()["m"]
    assert s.latency_ms == 200.0 and s.output_tokens == 100.0 and s.samples == 3


def test_min_context_size_and_allow_escalation() -> None:
    d = decide(min_context_size=30000)
    assert {c.model.id for c in d.candidates} == {"slow", "new"}
    assert "min_context_size 30000" in {e.model_id: e.reason for e in d.excluded}["fast"]
    one = decide(allow_escalation=False)
    assert len(one.candidates) == 1 and "allow_escalation=false" in one.reason


def test_chat_never_routes_to_embedding_models_and_embeddings_only_to_them() -> None:
    chat = decide()
    assert "emb" not in {c.model.id for c in chat.candidates}
    assert "embedding model" in {e.model_id: e.reason for e in chat.excluded}["emb"]
    emb = decide(kind="embedding")
    assert [c.model.id for c in emb.candidates] == ["emb"]


def test_mode_weights_from_the_routing_config_change_the_ranking() -> None:
    ctx_kw = {"models": [FAST, SLOW], "now": 0.0}
    pol = ResolvedPolicy(mode="normal")
    base = route(messages=[], estimated_input_tokens=100, model_hint=None, policy=pol,
                 ctx=RoutingContext(**ctx_kw), max_output_tokens=None,  # type: ignore[arg-type]
                 rng=random.Random(0))
    weight_only = RoutingConfig.model_validate(
        {"weights": {"normal": {"cost": 0, "latency": 0, "failure": 0, "weight": 1}}})
    heavy = route(messages=[], estimated_input_tokens=100, model_hint=None, policy=pol,
                  ctx=RoutingContext(**ctx_kw,  # type: ignore[arg-type]
                                     mode_weights=weight_only.weight_table()),
                  max_output_tokens=None, rng=random.Random(0))
    assert base.candidates[0].model.id == "fast"  # SPEC weights: 10× cheaper wins
    assert heavy.candidates[0].model.id == "slow"  # model weight only: weight 9 wins


@pytest.mark.parametrize("body, field", [
    ({"bogus": 1}, "bogus"),
    ({"defaults": {"colour": "red"}}, "defaults.colour"),
    ({"weights": {"cheap": {"cost": -1}}}, "weights.cheap.cost"),
    ({"weights": {"normal": {"cost": 0, "latency": 0, "failure": 0, "weight": 0}}},
     "weights.normal"),
    ({"defaults": {"mode": "fastest"}}, "defaults.mode"),
])
def test_routing_config_validation_names_the_field(body: dict, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        RoutingConfig.model_validate(RoutingConfig().merged(body))
    locs = {".".join(map(str, e["loc"])) for e in info.value.errors()}
    assert field in locs


def test_call_timeout_is_the_smaller_of_budget_left_and_configured() -> None:
    call = ModelCall(request_id="r", model=FAST, messages=[{"role": "user", "content": "x"}])
    assert call_timeout(call, 120.0) == 120.0
    assert call_timeout(call.model_copy(update={"timeout_s": 0.4}), 120.0) == 0.4
    assert call_timeout(call.model_copy(update={"timeout_s": 9.0}), 2.0) == 2.0


class _Clocked:
    """Effects whose clock advances 700 ms per call; every call fails as transient."""

    executor: Executor = "local"

    def __init__(self) -> None:
        self.t = datetime(2026, 1, 1, tzinfo=UTC)
        self.calls: list[ModelCall] = []

    def now(self) -> datetime:
        return self.t

    async def call_model(self, call: ModelCall) -> ModelCallResult:
        from shared.orchestration.ports import ModelCallFailed

        self.calls.append(call)
        self.t += timedelta(milliseconds=700)
        if len(self.calls) < 2:
            raise ModelCallFailed(Attempt(model=call.model.id, provider="p",
                                          outcome="transient"))
        return ModelCallResult(completion=Completion(content="ok"), cost_usd=0.0,
                               attempt=Attempt(model=call.model.id, provider="p",
                                               outcome="ok"))

    async def record(self, batch: RecordBatch) -> None:
        return None


async def test_each_call_timeout_is_bounded_by_the_latency_budget_left() -> None:
    fx = _Clocked()
    inp = chat_input("r1", FAST, SLOW)
    await complete_with_failover(fx, request_id="r1", route=inp.route, messages=inp.messages,
                                 parameters={}, max_attempts=4,
                                 policy=ResolvedPolicy(max_latency_ms=2000))
    assert [c.timeout_s for c in fx.calls] == [2.0, pytest.approx(1.3)]
