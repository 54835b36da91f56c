"""Issue 16: late user feedback steers the Thompson bandit.

A seeded simulation with an injected clock, through the real pieces: the routing engine
in ``mode: thompson``, each run's request-log row and automatic reward built by the one
record builder (``record_batch``) and written by the request-log writer, ratings written
by the feedback store (1–60 minutes after their request, in simulated time), and the
posteriors refreshed from the rewards table every 30 s of simulated time as the gateway
does (``repo.reward_posteriors``). Two models, equally cheap and equally fast: they
differ only in what users think of their answers (0.9 vs 0.3).
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.contracts import Attempt, Message
from shared.orchestration.records import RunSummary, record_batch
from shared.routing.engine import route
from shared.routing.thompson import PosteriorBook
from shared.routing.types import ModelSpec, ResolvedPolicy, RoutingContext
from shared.store import feedback, repo
from shared.store.db import create_engine, create_sessionmaker
from shared.store.migrations import migrate
from shared.store.requestlog import RequestLogWriter

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
MODELS = [ModelSpec(id=m, provider_id="p", upstream_model=m, weight=5,
                    max_context_tokens=8192, input_per_1k=0.0001, output_per_1k=0.0002)
          for m in ("good", "poor")]
USER_SCORE = {"good": 0.9, "poor": 0.3}
MSGS = [Message(role="user", content="a templated question")]
POLICY = ResolvedPolicy(mode="thompson")
EVERY_S = 6.0  # a request every 6 s of simulated time
REFRESH_S = 30.0  # the gateway's posterior refresh interval


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[tuple[str, async_sessionmaker[AsyncSession]]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'sim.db'}"
    await migrate(url)
    engine = create_engine(url)
    yield url, create_sessionmaker(engine)
    await engine.dispose()


async def simulate(url: str, sm: async_sessionmaker[AsyncSession], *, weight: float,
                   warmup: int = 500, measured: int = 200, seed: int = 16) -> float:
    """The good model's share of the ``measured`` requests after ``warmup`` ones."""
    rng = random.Random(seed)
    writer = RequestLogWriter(url)
    book = PosteriorBook()
    due: list[tuple[datetime, str, str]] = []  # (when, request id, model): ratings to send
    picks: Counter[str] = Counter()
    next_refresh = T0
    try:
        for i in range(warmup + measured):
            now = T0 + timedelta(seconds=i * EVERY_S)
            while due and due[0][0] <= now:  # late feedback arriving before this request
                at, rid, model = heapq.heappop(due)
                await feedback.rate(sm, feedback.Rating(request_id=rid, score=USER_SCORE[model]),
                                    api_key_id=None, check_owner=True, weight=weight, now=at)
            if now >= next_refresh:
                async with sm() as s:
                    book.refresh(await repo.reward_posteriors(s))
                next_refresh = now + timedelta(seconds=REFRESH_S)
            ctx = RoutingContext(models=MODELS, now=i * EVERY_S, posteriors=book.snapshot())
            decision = route(messages=MSGS, estimated_input_tokens=10, model_hint=None,
                             policy=POLICY, ctx=ctx, max_output_tokens=None, rng=rng)
            model = decision.candidates[0].model
            if i >= warmup:
                picks[model.id] += 1
            rid = f"sim-{i}"
            attempt = Attempt(model=model.id, provider="p", outcome="ok", status=200,
                              latency_ms=300.0, cost_usd=model.cost_usd(10, 50),
                              input_tokens=10, output_tokens=50)
            summary = RunSummary(request_id=rid, kind="chat", mode="thompson",
                                 model=model.id, provider="p", attempts=[attempt],
                                 latency_ms=310.0, size_bucket="small")
            batch = record_batch(summary, now)
            await writer.write_now(batch.record, batch.rewards)
            late = timedelta(seconds=rng.uniform(60, 3600))  # 1–60 minutes later
            heapq.heappush(due, (now + late, rid, model.id))
    finally:
        await writer.aclose()
    return picks["good"] / measured


async def test_late_user_scores_steer_thompson_to_the_better_model(
        store: tuple[str, async_sessionmaker[AsyncSession]]) -> None:
    url, sm = store
    share = await simulate(url, sm, weight=1.0)
    assert share > 0.75, share


async def test_without_feedback_weight_the_two_models_stay_alike(
        store: tuple[str, async_sessionmaker[AsyncSession]]) -> None:
    """The control: same simulation, ratings stored but weighted 0 — nothing tells the
    models apart, so neither takes the traffic (what steers above is the feedback)."""
    url, sm = store
    share = await simulate(url, sm, weight=0.0, warmup=200, measured=200)
    assert 0.2 < share < 0.8, share
