"""OpenAI-compatible API: ``POST /v1/chat/completions`` and ``GET /v1/models``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from api.deps import Ctx, ModelsCtx, json_body, lean_post
from api.openai_wire import CompletionsBody, completion_object
from api.responses import JSONResponse
from api.routes.chat import cache_ask, routing_headers
from api.schemas import ChatCompletion, ModelList
from api.security import stored_body
from api.stream_sse import stream_response
from shared.errors import BadRequest

router = APIRouter(tags=["openai"])
TTL_HEADER = "X-TokenHub-Cache-TTL"


def header_ttl(request: Request) -> int | None:
    """``X-TokenHub-Cache-TTL: <seconds>`` (the compatible routes' cache directive)."""
    raw = request.headers.get(TTL_HEADER)
    if raw is None:
        return None
    try:
        return int(raw.strip())
    except ValueError:
        raise BadRequest(f"{TTL_HEADER}: must be an integer number of seconds, not "
                         f"{raw[:40]!r}") from None


@lean_post(router, "/v1/chat/completions", scope="chat", body=CompletionsBody,
           response=ChatCompletion,
           summary="OpenAI-compatible chat completion (SSE when stream is true)", tag="openai",
           headers=((TTL_HEADER, "answer from the response cache when an identical request "
                     "was answered less than this many seconds ago; else keep the answer "
                     "this long (1 … TOKENHUB_CACHE_MAX_TTL_S)", {"type": "integer"}),))
async def chat_completions(request: Request, ctx: Ctx) -> Response:
    body = await json_body(request, CompletionsBody)
    caller = ctx.caller(stored_body(request, body), body=body)
    ask = cache_ask(ctx, header_ttl(request), None if body.model == "auto" else body.model,
                    TTL_HEADER)
    inp = ctx.service.prepare_chat(body.to_chat_body(), caller,
                                   kind="stream" if body.stream else "completions")
    if body.stream:
        include_usage = bool((body.stream_options or {}).get("include_usage"))
        opened = await ctx.service.stream_chat(inp, caller, include_usage=include_usage,
                                               cache=ask)
        return stream_response(opened, request, include_usage=include_usage)
    outcome = await ctx.service.run_chat(inp, caller, cache=ask)
    return JSONResponse(completion_object(outcome),
                        headers=routing_headers(outcome, ctx.state.settings))


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
