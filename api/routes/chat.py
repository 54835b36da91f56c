"""Native chat API: ``POST /v1/chat``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from api.deps import Ctx, json_body, lean_post
from api.dispatch import Dispatcher
from api.responses import JSONResponse
from api.security import Budget, stored_body
from api.streaming import native_stream
from shared.contracts import ChatBody, ChatResponse, Executor
from shared.orchestration.chat import ChatInput, ChatOutcome
from shared.orchestration.prepare import prepare_chat

router = APIRouter(tags=["chat"])


async def run_charged(dispatcher: Dispatcher, inp: ChatInput, budget: Budget
                      ) -> tuple[ChatOutcome, Executor]:
    try:
        outcome, executor = await dispatcher.run_chat(inp)
    except BaseException:
        await budget.settle(0.0)
        raise
    await budget.settle(outcome.response.cost_usd)
    return outcome, executor


def routing_headers(outcome: ChatOutcome, executor: str) -> dict[str, str]:
    return {
        "X-TokenHub-Model": outcome.negotiated_model,
        "X-TokenHub-Provider": outcome.provider,
        "X-TokenHub-Executor": executor,
        "X-TokenHub-Cost-USD": f"{outcome.response.cost_usd:.8f}",
        "X-TokenHub-Attempts": str(len(outcome.attempts)),
    }


@lean_post(router, "/v1/chat", scope="chat", body=ChatBody,
           summary="Routed chat completion with TokenHub's routing metadata", tag="chat")
async def chat(request: Request, ctx: Ctx) -> Response:
    body = await json_body(request, ChatBody)
    state, principal = ctx.state, ctx.principal
    hint = body.request.model_hint
    inp = prepare_chat(
        body, request_id=ctx.request_id, kind="stream" if body.request.stream else "chat",
        defaults=state.default_policy, ctx=state.routing_context(), rng=state.rng,
        max_attempts=state.settings.max_attempts, retry=state.retry,
        known_model=hint is None or state.known_model(hint),
        request_body=stored_body(request, body),
        api_key_id=ctx.api_key_id,
    )
    budget = Budget(request, principal)
    await budget.reserve(inp.route.candidates[0].estimated_cost_usd)
    if body.request.stream:
        return await native_stream(state, inp, budget=budget)
    outcome, executor = await run_charged(ctx.dispatcher, inp, budget)
    resp = ChatResponse(executor=executor, **outcome.model_dump())
    return JSONResponse(resp.model_dump(mode="json"),
                        headers=routing_headers(outcome, executor))
