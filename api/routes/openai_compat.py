"""OpenAI-compatible API: ``POST /v1/chat/completions`` and ``GET /v1/models``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from api.deps import Ctx, ModelsCtx, json_body, lean_post
from api.openai_wire import CompletionsBody, completion_object
from api.responses import JSONResponse
from api.routes.chat import routing_headers
from api.schemas import ChatCompletion, ModelList
from api.security import stored_body
from api.stream_sse import stream_response

router = APIRouter(tags=["openai"])

@lean_post(router, "/v1/chat/completions", scope="chat", body=CompletionsBody,
           response=ChatCompletion,
           summary="OpenAI-compatible chat completion (SSE when stream is true)", tag="openai")
async def chat_completions(request: Request, ctx: Ctx) -> Response:
    body = await json_body(request, CompletionsBody)
    caller = ctx.caller(stored_body(request, body), body=body)
    inp = ctx.service.prepare_chat(body.to_chat_body(), caller,
                                   kind="stream" if body.stream else "completions")
    if body.stream:
        include_usage = bool((body.stream_options or {}).get("include_usage"))
        opened = await ctx.service.stream_chat(inp, caller, include_usage=include_usage)
        return stream_response(opened, request, include_usage=include_usage)
    outcome = await ctx.service.run_chat(inp, caller)
    return JSONResponse(completion_object(outcome), headers=routing_headers(outcome))


@router.get("/v1/models", response_model=ModelList)
async def list_models(ctx: ModelsCtx) -> Response:
    state = ctx.state
    created = 0
    data = [{"id": m.id, "object": "model", "created": created, "owned_by": m.provider}
            for m in state.catalog.models if m.enabled]
    data += [{"id": a, "object": "model", "created": created, "owned_by": "tokenhub-alias"}
             for a in state.catalog.alias_targets()]
    data.append({"id": "auto", "object": "model", "created": created, "owned_by": "tokenhub"})
    return JSONResponse({"object": "list", "data": data})
