"""Multi-model orchestration API: ``POST /v1/plan``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from api.deps import PlanCtx
from api.responses import JSONResponse
from api.schemas import PlanResponse
from api.security import stored_body
from shared.contracts import PlanBody

router = APIRouter(tags=["plan"])


@router.post("/v1/plan", response_model=PlanResponse)
async def plan(body: PlanBody, request: Request, ctx: PlanCtx) -> Response:
    caller = ctx.caller(stored_body(request, body), body=body)
    outcome = await ctx.service.run_plan(ctx.service.prepare_plan(body, caller), caller)
    run = outcome.summary
    content = {"request_id": outcome.request_id, "mode": outcome.mode,
               "executor": run.executor, **outcome.result, "models": outcome.models,
               "cost_usd": run.cost_usd,
               "usage": {"prompt_tokens": run.input_tokens,
                         "completion_tokens": run.output_tokens},
               "attempts": [a.model_dump(mode="json") for a in run.attempts]}
    return JSONResponse(content, headers={
        "X-TokenHub-Executor": run.executor, "X-TokenHub-Model": run.model or "",
        "X-TokenHub-Provider": run.provider or "",
        "X-TokenHub-Cost-USD": f"{run.cost_usd:.8f}"})
