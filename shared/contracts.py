"""Pydantic models shared by the gateway, the orchestration and the workflows.

Public request/response shapes (SPEC §3) and the internal messages that cross
the effects port (and so Temporal's data converter). Every workflow and
activity takes exactly one of these models, so fields can be added later
without breaking running histories: new fields always get a default.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator

from shared.errors import ErrorClass

Mode = Literal["cheap", "normal", "high_confidence", "planning", "adversarial", "thompson"]
MODES: tuple[str, ...] = get_args(Mode)
Role = Literal["system", "user", "assistant", "tool", "developer"]
Executor = Literal["temporal", "local", "cache"]  # cache: a hit, no run
PlanMode = Literal["adversarial", "vote", "refine", "planning"]


class Message(BaseModel):
    """One chat message. ``content`` may be a string or OpenAI-style content parts."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    role: Role
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None

    def text(self) -> str:
        """The message's text, content parts joined."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(str(p.get("text", "")) for p in self.content if isinstance(p, dict))


class Parameters(BaseModel):
    """Sampling parameters forwarded to the provider (unknown keys are forwarded too)."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None

    def forwarded(self) -> dict[str, Any]:
        """The parameters to send upstream: only those the client set."""
        return self.model_dump(exclude_none=True)


class ChatRequest(BaseModel):
    """The ``request`` part of a native ``/v1/chat`` body."""

    model_config = ConfigDict(allow_inf_nan=False)

    messages: list[Message] = Field(min_length=1)
    model_hint: str | None = None
    estimated_input_tokens: int | None = Field(default=None, ge=0)
    parameters: Parameters = Field(default_factory=Parameters)
    stream: bool = False
    meta: dict[str, Any] | None = None


class Policy(BaseModel):
    """Routing policy; unset fields fall back to server defaults."""

    model_config = ConfigDict(allow_inf_nan=False)

    mode: Mode | None = None
    max_budget_usd: float | None = Field(default=None, ge=0)
    max_latency_ms: int | None = Field(default=None, gt=0)
    min_weight: float | None = Field(default=None, ge=0, le=10)
    min_context_size: int | None = Field(default=None, ge=0)  # smaller windows ineligible
    allow_escalation: bool | None = None  # false: never fail over to another model


class OutputFormat(BaseModel):
    """How to shape the model's output before returning it."""

    model_config = ConfigDict(populate_by_name=True, allow_inf_nan=False)

    type: Literal["json", "markdown", "text"] = "text"
    json_schema: dict[str, Any] | None = Field(default=None, alias="schema")
    max_tokens: int | None = Field(default=None, ge=1)
    strip_think: bool = False


class CacheDirective(BaseModel):
    """``"cache": {"ttl_s": N}``: answer from the exact response cache when an identical
    request was answered less than N seconds ago, else run and keep the answer N seconds
    (at most TOKENHUB_CACHE_MAX_TTL_S)."""

    model_config = ConfigDict(extra="forbid")

    ttl_s: int = Field(gt=0)


class ChatBody(BaseModel):
    """``POST /v1/chat`` body."""

    request: ChatRequest
    policy: Policy | None = None
    output_format: OutputFormat | None = None
    cache: CacheDirective | None = None


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class Completion(BaseModel):
    """A provider's answer, normalised across wire formats."""

    content: str = ""
    role: Literal["assistant"] = "assistant"
    finish_reason: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    usage: Usage = Field(default_factory=Usage)
    logprobs: dict[str, Any] | None = None  # the provider's, as sent (OpenAI wire format)
    upstream_model: str | None = None
    upstream_id: str | None = None


class StreamChunk(BaseModel):
    """One piece of a streamed answer, normalised across wire formats."""

    delta: str = ""
    finish_reason: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    usage: Usage | None = None
    logprobs: dict[str, Any] | None = None


class Attempt(BaseModel):
    """One model tried for a request (``tries`` counts transient retries on it)."""

    model: str
    provider: str
    outcome: Literal["ok"] | ErrorClass  # the error classes are declared in shared/errors.py
    status: int | None = None
    latency_ms: float = 0.0
    tries: int = 1
    message: str | None = None
    retry_after: float | None = None
    cost_usd: float = 0.0  # what the provider billed for this call (0 unless it answered)
    input_tokens: int = 0
    output_tokens: int = 0
    step: str | None = None


class ResponseMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    tool_calls: list[dict[str, Any]] | None = None


class NormalizedResponse(BaseModel):
    message: ResponseMessage
    finish_reason: str | None = None
    usage: Usage
    cost_usd: float
    parsed: Any | None = None
    logprobs: dict[str, Any] | None = None  # when asked for (``logprobs``) and given


class ChatResponse(BaseModel):
    """``POST /v1/chat`` result."""

    request_id: str
    negotiated_model: str
    provider: str
    estimated_cost_usd: float
    routing_reason: str
    executor: Executor
    attempts: list[Attempt]
    response: NormalizedResponse


class RoleParameters(BaseModel):
    """Per-role overrides of a plan's ``request.parameters`` (merged over them, key by key):
    ``primary`` = planner / voters / drafts, ``reviewer`` = critic, ``judge`` = vote's judge."""

    model_config = ConfigDict(extra="forbid")

    primary: Parameters | None = None
    reviewer: Parameters | None = None
    judge: Parameters | None = None


class Orchestration(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)

    mode: PlanMode = "adversarial"
    iterations: int = Field(default=1, ge=0, le=10)
    primary_model_id: str | None = None
    review_model_id: str | None = None
    primary_min_weight: float | None = Field(default=None, ge=0, le=10)
    review_min_weight: float | None = Field(default=None, ge=0, le=10)
    voters: int = Field(default=3, ge=1, le=10)
    return_plan_only: bool = False
    output_schema: dict[str, Any] | None = None
    role_parameters: RoleParameters | None = None


class PlanRequest(BaseModel):
    messages: list[Message] = Field(min_length=1)
    parameters: Parameters = Field(default_factory=Parameters)  # forwarded to every step

    @field_validator("messages")
    @classmethod
    def _has_user_text(cls, v: list[Message]) -> list[Message]:
        if not any(m.text().strip() for m in v):
            raise ValueError("messages must contain some text")
        return v


class PlanBody(BaseModel):
    """``POST /v1/plan`` body."""

    request: PlanRequest
    orchestration: Orchestration = Field(default_factory=Orchestration)
    policy: Policy | None = None


class RequestRecord(BaseModel):
    """One row of the request log (no secrets; bodies only if TOKENHUB_LOG_BODIES)."""

    request_id: str
    created_at: datetime
    kind: Literal["chat", "plan", "completions", "messages", "stream", "embeddings",
                  "cache"] = "chat"
    mode: str | None = None
    model: str | None = None
    provider: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    status: Literal["ok", "error"] = "ok"
    http_status: int = 200
    error_class: str | None = None
    executor: Executor = "local"
    api_key_id: str | None = None
    attempts: list[Attempt] = Field(default_factory=list)
    request_body: str | None = None
    response_body: str | None = None
    size_bucket: str | None = None  # the run's routing size bucket (feedback rewards it)


class RewardRecord(BaseModel):
    """One reward row for Thompson sampling (SPEC §4)."""

    request_id: str
    created_at: datetime
    model: str
    size_bucket: Literal["small", "medium", "large"]
    reward: float = Field(ge=0, le=1)
    success: bool
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    # None: the gateway's automatic reward; "feedback:<source>": a user's score
    # (POST /v1/feedback), counted ``weight`` times in the posterior
    source: str | None = None
    weight: float = Field(default=1.0, ge=0)
