"""Native chat API: ``POST /v1/chat`` (JSON, or SSE when ``request.stream`` is true)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from api.deps import Ctx, json_body, lean_post
from api.response_cache import CacheAsk, check_ttl
from api.responses import JSONResponse, run_link
from api.security import stored_body
from api.stream_sse import stream_response
from shared.config import Settings
from shared.contracts import ChatBody, ChatResponse
from shared.orchestration.chat import ChatOutcome

router = APIRouter(tags=["chat"])


def routing_headers(outcome: ChatOutcome, settings: Settings) -> dict[str, str]:
    run = outcome.summary
    headers = {
        **run_link(settings, outcome.request_id, run.executor),
        "X-TokenHub-Model": outcome.negotiated_model,
        "X-TokenHub-Provider": outcome.provider,
        "X-TokenHub-Executor": run.executor,
        "X-TokenHub-Cost-USD": f"{run.cost_usd:.8f}",
        "X-TokenHub-Attempts": str(len(run.attempts)),
    }
    if outcome.cache is not None:
        headers["X-TokenHub-Cache"] = outcome.cache
    return headers


def cache_ask(ctx: Ctx, ttl_s: int | None, model_hint: str | None, field: str) -> CacheAsk:
    """The request's cache directive, its TTL checked (400 naming ``field``)."""
    return CacheAsk(ttl_s=check_ttl(ttl_s, ctx.state.settings.cache_max_ttl_s, field),
                    model_hint=model_hint)


@lean_post(router, "/v1/chat", scope="chat", body=ChatBody, response=ChatResponse,
           summary="Routed chat completion with TokenHub's routing metadata", tag="chat")
async def chat(request: Request, ctx: Ctx) -> Response:
    body = await json_body(request, ChatBody)
    caller = ctx.caller(stored_body(request, body), body=body)
    stream = body.request.stream
    ask = cache_ask(ctx, body.cache.ttl_s if body.cache else None, body.request.model_hint,
                    "cache.ttl_s")
    inp = ctx.service.prepare_chat(body, caller, kind="stream" if stream else "chat")
    if stream:
        opened = await ctx.service.stream_chat(inp, caller, cache=ask)
        return stream_response(opened, request, include_usage=True)
    outcome = await ctx.service.run_chat(inp, caller, cache=ask)
    return JSONResponse(chat_answer(outcome),
                        headers=routing_headers(outcome, ctx.state.settings))


def chat_answer(outcome: ChatOutcome) -> dict[str, Any]:
    """``/v1/chat``'s answer (also an async chat run's result)."""
    return ChatResponse(
        request_id=outcome.request_id, negotiated_model=outcome.negotiated_model,
        provider=outcome.provider, estimated_cost_usd=outcome.estimated_cost_usd,
        routing_reason=outcome.routing_reason, executor=outcome.summary.executor,
        attempts=outcome.attempts, response=outcome.response).model_dump(mode="json")
