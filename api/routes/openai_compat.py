"""OpenAI-compatible API: ``POST /v1/chat/completions`` and ``GET /v1/models``."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ConfigDict, Field
from starlette.responses import Response

from api.deps import Ctx, ModelsCtx, json_body, lean_post
from api.responses import JSONResponse
from api.routes.chat import cache_ask, routing_headers
from api.schemas import ChatCompletion, ModelList
from api.security import stored_body
from api.stream_sse import stream_response
from shared.contracts import ChatBody, ChatRequest, Message, Parameters, Policy
from shared.errors import BadRequest
from shared.orchestration.chat import ChatOutcome

router = APIRouter(tags=["openai"])
TTL_HEADER = "X-TokenHub-Cache-TTL"

_NOT_PARAMETERS = {"model", "messages", "stream", "stream_options", "n", "user", "policy",
                   "metadata", "store", "max_completion_tokens"}


class CompletionsBody(Parameters):
    """The OpenAI chat completions request; unknown fields are forwarded upstream.

    The sampling parameters are :class:`Parameters`' own fields (same bounds), so they are
    validated with the body, at the edge, and a bad one is a 400 naming the field."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    model: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    n: int | None = Field(default=None, ge=1, le=1, description="only 1 is supported")
    max_completion_tokens: int | None = Field(default=None, ge=1)
    user: str | None = None
    policy: Policy | None = None  # TokenHub extension (extra_body={"policy": {...}})

    def to_chat_body(self) -> ChatBody:
        params = self.model_dump(exclude=_NOT_PARAMETERS, exclude_none=True)
        if self.max_completion_tokens and "max_tokens" not in params:
            params["max_tokens"] = self.max_completion_tokens
        hint = None if self.model == "auto" else self.model
        return ChatBody.model_construct(  # every value was validated with the body
            request=ChatRequest.model_construct(
                messages=self.messages, model_hint=hint,
                parameters=Parameters.model_construct(**params), stream=self.stream,
                estimated_input_tokens=None, meta=None),
            policy=self.policy, output_format=None)


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


def completion_object(outcome: ChatOutcome) -> dict[str, Any]:
    r = outcome.response
    message: dict[str, Any] = {"role": "assistant", "content": r.message.content}
    if r.message.tool_calls:
        message["tool_calls"] = r.message.tool_calls
    return {
        "id": f"chatcmpl-{outcome.request_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": outcome.negotiated_model,
        "choices": [{"index": 0, "message": message,
                     "finish_reason": r.finish_reason or "stop", "logprobs": r.logprobs}],
        "usage": {"prompt_tokens": r.usage.prompt_tokens,
                  "completion_tokens": r.usage.completion_tokens,
                  "total_tokens": r.usage.total_tokens},
    }


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
