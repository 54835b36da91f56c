"""Routing engine: eligibility and scoring per mode, hints, aliases, Thompson (pure)."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.contracts import Message
from shared.errors import NoEligibleModel
from shared.routing.engine import escalation_order, require_candidates, route
from shared.routing.estimate import estimate_tokens, size_bucket
from shared.routing.thompson import PosteriorBook, reward
from shared.routing.types import (
    BetaPosterior,
    ModelSpec,
    ModelStats,
    ProviderHealth,
    ResolvedPolicy,
    RoutingContext,
)
from tests.factories import spec

MSGS = [Message(role="user", content="hello")]
# id, provider, ctx, weight, in/1k, out/1k
CHEAP = spec("cheap", "p1", ctx=8000, weight=2, inp=0.0001, out=0.0002)
MID = spec("mid", "p2", ctx=32000, weight=5, inp=0.001, out=0.002)
HEAVY = spec("heavy", "p3", ctx=128000, weight=9, inp=0.01, out=0.03)
MODELS = [CHEAP, MID, HEAVY]


def decide(mode: str = "normal", *, models: list[ModelSpec] = MODELS, tokens: int = 100,
           hint: str | None = None, ctx_kw: dict | None = None, seed: int = 0, **pol: float):
    ctx = RoutingContext(models=models, now=1000.0, **(ctx_kw or {}))
    policy = ResolvedPolicy(mode=mode, **pol)  # type: ignore[arg-type]
    return route(messages=MSGS, estimated_input_tokens=tokens, model_hint=hint, policy=policy,
                 ctx=ctx, max_output_tokens=None, rng=random.Random(seed))


@pytest.mark.parametrize(("mode", "winner"), [
    ("cheap", "cheap"), ("normal", "mid"), ("high_confidence", "heavy"),
    ("planning", "heavy"), ("adversarial", "heavy")])
def test_mode_picks(mode: str, winner: str) -> None:
    assert decide(mode).candidates[0].model.id == winner


@pytest.mark.parametrize(("kwargs", "excluded", "why"), [
    ({"max_budget_usd": 0.001}, {"mid", "heavy"}, "budget"),
    ({"min_weight": 5}, {"cheap"}, "min_weight"),
    ({"tokens": 10_000, "max_budget_usd": 10}, {"cheap"}, "context"),  # 8000 < 1.15 × 10000
    ({"tokens": 30_000, "max_budget_usd": 10}, {"cheap", "mid"}, "context"),
])
def test_exclusions(kwargs: dict, excluded: set[str], why: str) -> None:
    d = decide("normal", **kwargs)
    assert {e.model_id for e in d.excluded} == excluded
    assert all(why in e.reason for e in d.excluded)
    assert {c.model.id for c in d.candidates} == {"cheap", "mid", "heavy"} - excluded


def test_disabled_and_cooling_down_providers_are_excluded() -> None:
    off = CHEAP.model_copy(update={"enabled": False})
    d = decide(models=[off, MID, HEAVY],
               ctx_kw={"health": {"p2": ProviderHealth(cooldown_until=1010, reason="429"),
                                  "p3": ProviderHealth(cooldown_until=999)}})
    assert [c.model.id for c in d.candidates] == ["heavy"]  # p3's cool-down is over
    reasons = {e.model_id: e.reason for e in d.excluded}
    assert reasons["cheap"] == "disabled" and "cooling down" in reasons["mid"]


def test_nothing_eligible_is_a_503_naming_each_reason() -> None:
    d = decide(max_budget_usd=0.0)
    with pytest.raises(NoEligibleModel) as exc:
        require_candidates(d)
    assert exc.value.status_code == 503
    assert "cheap: estimated cost" in exc.value.message and "heavy" in exc.value.message
    assert len(exc.value.details["excluded"]) == 3


def test_hint_wins_if_eligible_else_ignored() -> None:
    assert decide("cheap", hint="heavy").candidates[0].model.id == "heavy"
    assert decide("cheap", hint="heavy").candidates[0].reason == "model_hint"
    assert decide("cheap", hint="heavy", min_weight=0, max_budget_usd=0.001
                  ).candidates[0].model.id == "cheap"


def test_latency_and_failure_stats_change_the_ranking() -> None:
    stats = {"cheap": ModelStats(latency_ms=9000, failure_rate=0.9, samples=50),
             "mid": ModelStats(latency_ms=300, failure_rate=0.0, samples=50)}
    assert decide("normal", ctx_kw={"stats": stats}).candidates[0].model.id == "mid"


def test_alias_splits_by_weight() -> None:
    aliases = {"ab": {"cheap": 3, "mid": 1}}
    rng = random.Random(7)
    ctx = RoutingContext(models=MODELS, now=0, aliases=aliases)
    picks = Counter(route(messages=MSGS, estimated_input_tokens=10, model_hint="ab",
                          policy=ResolvedPolicy(), ctx=ctx, max_output_tokens=None,
                          rng=rng).candidates[0].model.id for _ in range(2000))
    assert set(picks) == {"cheap", "mid"}
    assert 0.70 < picks["cheap"] / 2000 < 0.80


def test_ties_break_by_model_id() -> None:
    twins = [spec("b", "p1"), spec("a", "p1")]
    assert [c.model.id for c in decide(models=twins).candidates] == ["a", "b"]


def test_thompson_converges_on_the_rewarded_model() -> None:
    book = PosteriorBook()
    rng = random.Random(42)
    ctx_models = [CHEAP, MID, HEAVY]
    picks: Counter[str] = Counter()
    truth = {"cheap": 0.2, "mid": 0.9, "heavy": 0.3}  # success probability per model
    for _ in range(600):
        ctx = RoutingContext(models=ctx_models, now=0, posteriors=book.snapshot())
        chosen = route(messages=MSGS, estimated_input_tokens=100, model_hint=None,
                       policy=ResolvedPolicy(mode="thompson"), ctx=ctx, max_output_tokens=None,
                       rng=rng).candidates[0].model.id
        picks[chosen] += 1
        ok = rng.random() < truth[chosen]
        book.update(chosen, "small", reward(ok, 0.001, 500, 20000))
    late_share = picks["mid"] / 600
    assert late_share > 0.7


def test_reward_formula() -> None:
    assert reward(False, 0.0, 0.0, 20000) == 0
    assert reward(True, 0.0, 0.0, 20000) == pytest.approx(1.0)
    assert reward(True, 0.05, 10000, 20000) == pytest.approx(0.4 + 0.15 + 0.15)
    assert reward(True, 1.0, 99999, 500) == pytest.approx(0.4)  # budget floor of 1000 ms


def test_estimate_and_buckets() -> None:
    assert estimate_tokens([Message(role="user", content="x" * 401)]) == 101
    assert estimate_tokens(MSGS, 77) == 77  # the client may raise the estimate
    big = [Message(role="user", content="x" * 4_000_000)]
    assert estimate_tokens(big, 0) == estimate_tokens(big, 10) == 1_000_000  # never lower it
    assert [size_bucket(n) for n in (999, 1000, 10_000, 10_001)] == [
        "small", "medium", "medium", "large"]


def test_escalation_order() -> None:
    cands = decide("cheap").candidates
    first, rest = cands[0], cands[1:]
    assert [c.model.id for c in escalation_order(rest, first, "context_overflow")] == [
        c.model.id for c in rest if c.model.max_context_tokens > first.model.max_context_tokens]
    same_provider = decide(models=[spec("x", "p1"), spec("y", "p1", ctx=9000),
                                   spec("z", "p2")]).candidates
    left = escalation_order(same_provider[1:], same_provider[0], "rate_limited")
    assert {c.model.provider_id for c in left} == {"p2"}
    assert escalation_order(rest, first, "fatal") == rest


model_st = st.builds(
    lambda i, p, ctx, w, inp, out: spec(f"m{i}", f"p{p}", ctx=ctx, weight=w, inp=inp, out=out),
    st.integers(0, 10**6), st.integers(0, 3), st.integers(100, 200_000),
    st.floats(0, 10), st.floats(0, 0.05), st.floats(0, 0.1))


@settings(max_examples=150, deadline=None)
@given(models=st.lists(model_st, min_size=1, max_size=8, unique_by=lambda m: m.id),
       mode=st.sampled_from(["cheap", "normal", "high_confidence", "planning", "thompson"]),
       tokens=st.integers(1, 50_000), budget=st.floats(0, 1), min_weight=st.floats(0, 10),
       seed=st.integers(0, 1000), data=st.data())
def test_properties(models: list[ModelSpec], mode: str, tokens: int, budget: float,
                    min_weight: float, seed: int, data: st.DataObject) -> None:
    kw = {"max_budget_usd": budget, "min_weight": min_weight}
    d = decide(mode, models=models, tokens=tokens, seed=seed, **kw)
    for c in d.candidates:  # the chosen (and every ranked) model is eligible
        m = c.model
        assert m.weight >= min_weight and m.max_context_tokens >= 1.15 * tokens
        assert m.cost_usd(tokens, 512) <= budget
    assert len(d.candidates) + len(d.excluded) == len(models)
    shuffled = data.draw(st.permutations(models))
    d2 = decide(mode, models=list(shuffled), tokens=tokens, seed=seed, **kw)
    assert [c.model.id for c in d2.candidates] == [c.model.id for c in d.candidates]


def test_beta_posterior_default() -> None:
    assert BetaPosterior() == BetaPosterior(1.0, 1.0)


def test_simulation_ranks_without_calling_anyone() -> None:
    from shared.contracts import ChatBody
    from shared.routing.simulate import simulate

    body = ChatBody.model_validate({"request": {"messages": [
        {"role": "user", "content": "@@tokenhub mode=high_confidence\nhi"}]},
        "policy": {"max_budget_usd": 0.002}})
    out = simulate(body, defaults=ResolvedPolicy(), ctx=RoutingContext(models=MODELS, now=0),
                   rng=random.Random(1))
    assert out["policy"]["mode"] == "high_confidence"
    assert [c["model"] for c in out["candidates"]] == ["mid", "cheap"]
    assert out["excluded"] == [{"model_id": "heavy", "reason": out["excluded"][0]["reason"]}]
    assert "budget" in out["excluded"][0]["reason"]
