"""Small builders of routing/orchestration values for tests."""

from __future__ import annotations

from shared.orchestration.chat import ChatInput, Route
from shared.routing.types import Candidate, ModelSpec, ResolvedPolicy


def spec(model_id: str, provider: str = "p1", *, ctx: int = 8192, weight: float = 5,
         upstream: str | None = None, inp: float = 0.001, out: float = 0.002) -> ModelSpec:
    return ModelSpec(id=model_id, provider_id=provider, upstream_model=upstream or model_id,
                     weight=weight, max_context_tokens=ctx, input_per_1k=inp, output_per_1k=out)


def route(*specs: ModelSpec) -> Route:
    return Route(candidates=[Candidate(model=s, score=float(i), estimated_cost_usd=0.001,
                                       reason="test") for i, s in enumerate(specs)],
                 reason="test route")


def chat_input(request_id: str, *specs: ModelSpec, content: str = "hello") -> ChatInput:
    return ChatInput(request_id=request_id, messages=[{"role": "user", "content": content}],
                     route=route(*specs), policy=ResolvedPolicy())
