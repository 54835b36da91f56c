"""OpenAI's chat completions wire format: the request body and the answer object (used by
``POST /v1/chat/completions`` and by batch items with that url)."""

from __future__ import annotations

import time
from typing import Any

from pydantic import ConfigDict, Field

from shared.contracts import ChatBody, ChatRequest, Message, Parameters, Policy
from shared.orchestration.chat import ChatOutcome

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
