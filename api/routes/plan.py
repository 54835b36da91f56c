"""Multi-model orchestration API: ``POST /v1/plan``."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from api.deps import DispatcherDep, RequestIdDep, StateDep
from api.responses import JSONResponse
from shared.contracts import PlanBody
from shared.orchestration.prepare import prepare_plan

router = APIRouter(tags=["plan"])


@router.post("/v1/plan")
async def plan(body: PlanBody, state: StateDep, dispatcher: DispatcherDep,
               request_id: RequestIdDep) -> Response:
    inp = prepare_plan(
        body, request_id=request_id, defaults=state.default_policy,
        ctx=state.routing_context(), rng=state.rng, max_attempts=state.settings.max_attempts,
        known_model=state.known_model, retry=state.retry,
        request_body=body.model_dump_json() if state.settings.log_bodies else None)
    outcome, executor = await dispatcher.run_plan(inp)
    content = {"request_id": outcome.request_id, "mode": outcome.mode, "executor": executor,
               **outcome.result, "models": outcome.models, "cost_usd": outcome.cost_usd,
               "usage": {"prompt_tokens": outcome.input_tokens,
                         "completion_tokens": outcome.output_tokens},
               "attempts": [a.model_dump(mode="json") for a in outcome.attempts]}
    first_ok = next((a for a in outcome.attempts if a.outcome == "ok"), None)
    return JSONResponse(content, headers={
        "X-TokenHub-Executor": executor,
        "X-TokenHub-Model": first_ok.model if first_ok else "",
        "X-TokenHub-Provider": first_ok.provider if first_ok else "",
        "X-TokenHub-Cost-USD": f"{outcome.cost_usd:.8f}"})
