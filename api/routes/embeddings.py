"""OpenAI-compatible ``POST /v1/embeddings`` (scope ``chat``): the wire format only; the
request service routes, charges, runs and records it (shared/orchestration/embeddings.py)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from api.deps import Ctx, json_body, lean_post
from api.responses import JSONResponse
from api.schemas import EmbeddingList
from api.security import stored_body
from shared.contracts import Policy
from shared.orchestration.embeddings import EmbeddingInput, encode

router = APIRouter(tags=["openai"])


class EmbeddingsBody(BaseModel):
    """OpenAI's embeddings request (``user`` accepted and ignored)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1)  # an embedding model id, an alias, or "auto"
    input: EmbeddingInput
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None
    policy: Policy | None = None  # TokenHub extension (extra_body={"policy": {...}})


@lean_post(router, "/v1/embeddings", scope="chat", body=EmbeddingsBody, response=EmbeddingList,
           summary="OpenAI-compatible embeddings", tag="openai")
async def embeddings(request: Request, ctx: Ctx) -> Response:
    body = await json_body(request, EmbeddingsBody)
    caller = ctx.caller(stored_body(request, body))
    inp = ctx.service.prepare_embeddings(
        caller, input=body.input, model=None if body.model == "auto" else body.model,
        dimensions=body.dimensions, policy=body.policy)
    out = await ctx.service.run_embeddings(inp, caller)
    data: list[dict[str, Any]] = [
        {"object": "embedding", "index": i, "embedding": encode(v, body.encoding_format)}
        for i, v in enumerate(out.vectors)]
    run = out.summary
    return JSONResponse(
        {"object": "list", "data": data, "model": out.model,
         "usage": {"prompt_tokens": out.usage.prompt_tokens,
                   "total_tokens": out.usage.prompt_tokens}},
        headers={"X-TokenHub-Model": out.model, "X-TokenHub-Provider": out.provider,
                 "X-TokenHub-Executor": run.executor,
                 "X-TokenHub-Cost-USD": f"{run.cost_usd:.8f}",
                 "X-TokenHub-Attempts": str(len(run.attempts))})
