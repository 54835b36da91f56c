"""Embeddings (``POST /v1/embeddings``): routed among embedding models, with failover.

Not a workflow, on purpose (SPEC §3: the local path): an embeddings request is one short,
idempotent provider call with nothing between steps to make durable, and a retried client
request just asks again. Everything else is the same as for chat: the routing engine
(``kind="embedding"``: chat routing never picks an embedding model and this never picks a
chat model), the policy's budget and latency limits, failover by error class with the one
RetrySpec, the budget reserve/settle of api/service.py, and one RunSummary written through
:func:`~shared.orchestration.records.record_batch` (kind ``embeddings``) and observed by
the gateway's metrics.
"""

from __future__ import annotations

import base64
import math
import random
import struct
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, Field

from shared.contracts import Attempt, Policy, Usage
from shared.errors import BadRequest, NotFound, TokenHubError
from shared.orchestration.chat import Route, budget_left_s, elapsed_ms, fail_run, failover
from shared.orchestration.ports import Effects
from shared.orchestration.records import RunSummary, SizeBucket, summarize, write_record
from shared.providers.base import EmbeddingCall, Embeddings
from shared.routing.engine import require_candidates, route
from shared.routing.estimate import size_bucket
from shared.routing.policy import resolve_policy
from shared.routing.types import Candidate, ModelSpec, ResolvedPolicy, RoutingContext

EmbeddingInput = str | list[str] | list[int] | list[list[int]]


class EmbeddingsInput(BaseModel):
    """A routed embeddings request."""

    request_id: str
    input: EmbeddingInput
    dimensions: int | None = None
    route: Route
    policy: ResolvedPolicy
    max_attempts: int = 8
    size_bucket: SizeBucket = "small"
    api_key_id: str | None = None
    request_body: str | None = None
    started_at: datetime | None = None  # the gateway's arrival time (the row's latency)


class EmbeddingsOutcome(BaseModel):
    request_id: str
    model: str
    provider: str
    vectors: list[list[float]]
    usage: Usage = Field(default_factory=Usage)
    summary: RunSummary


class EmbeddingEffects(Effects, Protocol):
    """A runtime that can call an embedding model (the local one)."""

    async def embed(self, model: ModelSpec, call: EmbeddingCall) -> tuple[Embeddings, Attempt]:
        """Call ``model`` (retrying transient failures); raise ModelCallFailed for good."""
        ...


def _texts(value: EmbeddingInput) -> list[str] | None:
    """The input's strings (None for token arrays); 400 when it is empty."""
    if isinstance(value, str):
        if not value:
            raise BadRequest("input: must not be empty")
        return [value]
    if not value:
        raise BadRequest("input: must not be empty")
    if isinstance(value[0], int):
        return None
    if any((isinstance(v, str) and not v) or (isinstance(v, list) and not v) for v in value):
        raise BadRequest("input: must not contain an empty item")
    return [v for v in value if isinstance(v, str)] or None


def estimate_tokens(value: EmbeddingInput) -> int:
    texts = _texts(value)
    if texts is not None:
        return max(1, math.ceil(sum(len(t) for t in texts) / 4))
    if value and isinstance(value[0], int):
        return len(value)
    return sum(len(v) for v in value if isinstance(v, list))


def prepare_embeddings(*, request_id: str, input: EmbeddingInput, model: str | None,
                       dimensions: int | None, policy: Policy | None,
                       defaults: ResolvedPolicy, ctx: RoutingContext, rng: random.Random,
                       max_attempts: int, api_key_id: str | None = None,
                       request_body: str | None = None,
                       started_at: datetime | None = None) -> EmbeddingsInput:
    """Validate and route: ``model`` is an embedding model id, an alias of embedding models
    or None (``auto``). A chat model, or no input, is a 400."""
    tokens = estimate_tokens(input)
    if model is not None:
        spec = next((m for m in ctx.models if m.id == model), None)
        if spec is None and model not in ctx.aliases:
            raise NotFound(f"unknown model {model!r}: see GET /v1/models")
        targets = [spec] if spec else [m for m in ctx.models if m.id in ctx.aliases[model]]
        chat = [m.id for m in targets if m.kind != "embedding"]
        if chat:
            raise BadRequest(f"model: {', '.join(chat)} is a chat model, not an embedding "
                             "model (mark it `kind: embedding` in the catalog)")
    resolved = resolve_policy(defaults, policy, None)
    decision = route(messages=[], estimated_input_tokens=tokens, model_hint=model,
                     policy=resolved, ctx=ctx, max_output_tokens=1, rng=rng,
                     kind="embedding")
    require_candidates(decision, ctx, kind="embedding")
    return EmbeddingsInput(
        request_id=request_id, input=input, dimensions=dimensions,
        route=Route(candidates=decision.candidates, reason=decision.reason), policy=resolved,
        max_attempts=max_attempts, size_bucket=size_bucket(tokens), api_key_id=api_key_id,
        request_body=request_body, started_at=started_at)


async def run_embeddings(inp: EmbeddingsInput, fx: EmbeddingEffects) -> EmbeddingsOutcome:
    """Failover over the ranked embedding models; the run is recorded however it ends."""
    start = fx.now()
    attempts: list[Attempt] = []

    def summary(error: TokenHubError | None = None) -> RunSummary:
        return summarize(request_id=inp.request_id, kind="embeddings", mode=inp.policy.mode,
                         executor=fx.executor, attempts=attempts,
                         latency_ms=elapsed_ms(fx, start), api_key_id=inp.api_key_id,
                         size_bucket=inp.size_bucket, budget_ms=inp.policy.max_latency_ms,
                         error=error)

    async def attempt(cand: Candidate) -> tuple[Embeddings, Attempt]:
        call = EmbeddingCall(upstream_model=cand.model.upstream_model, input=inp.input,
                             dimensions=inp.dimensions, request_id=inp.request_id,
                             timeout_s=budget_left_s(fx, start, inp.policy))
        return await fx.embed(cand.model, call)

    try:
        cand, (result, ok) = await failover(
            fx, route=inp.route, policy=inp.policy, max_attempts=inp.max_attempts,
            attempts=attempts, what="for embeddings", attempt=attempt)
    except TokenHubError as err:
        await fail_run(fx, err, summary(err), inp.request_body, inp.started_at)
        raise
    attempts.append(ok)
    done = await write_record(fx, summary(), started_at=inp.started_at,
                              request_body=inp.request_body)
    return EmbeddingsOutcome(request_id=inp.request_id, model=cand.model.id,
                             provider=cand.model.provider_id, vectors=result.vectors,
                             usage=result.usage, summary=done)


def encode(vector: list[float], encoding_format: str) -> Any:
    """A vector as OpenAI returns it: floats, or base64 of little-endian float32."""
    if encoding_format != "base64":
        return vector
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
