"""Response models of every JSON answer, for the OpenAPI document (api/openapi.py).

The routes keep returning ``JSONResponse`` directly (FastAPI then skips its response
validation and serialization: the hot routes stay lean); these models are what those
answers contain, declared as each route's ``response_model`` (or, for the lean routes,
in ``document_lean_routes``), and checked against the live answers by the schemathesis
test (tests/api/test_openapi_contract.py).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from shared.config import ModelConfig, ProviderType
from shared.contracts import Attempt, Executor, PlanMode
from shared.security.apikeys import ApiKeyInfo
from shared.security.audit import AuditEntry


class ErrorDetail(BaseModel):
    """SPEC §3; some errors add fields (``attempts``, ``excluded``, ``retry_after``)."""

    model_config = ConfigDict(extra="allow")

    type: str
    message: str
    request_id: str


class ErrorResponse(BaseModel):
    error: ErrorDetail


# -- public ------------------------------------------------------------------------------

class CompletionMessage(BaseModel):
    role: Literal["assistant"]
    content: str | None
    tool_calls: list[dict[str, Any]] | None = None


class CompletionChoice(BaseModel):
    index: int
    message: CompletionMessage
    finish_reason: str | None
    logprobs: None = None


class CompletionUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    """``POST /v1/chat/completions`` (not streaming): OpenAI's chat.completion object."""

    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: CompletionUsage


class ModelEntry(BaseModel):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"]
    data: list[ModelEntry]


class PlanUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int


class PlanResponse(BaseModel):
    """``POST /v1/plan``: the common fields, then those of the mode (SPEC §3)."""

    model_config = ConfigDict(extra="allow")

    request_id: str
    mode: PlanMode
    executor: Executor
    models: list[str]
    cost_usd: float
    usage: PlanUsage
    attempts: list[Attempt]
    initial_plan: str | None = Field(default=None, description="adversarial, planning")
    critique: Any = Field(default=None, description="adversarial, planning")
    refined_plan: str | None = Field(default=None, description="adversarial, planning")
    rounds: list[dict[str, Any]] | None = Field(default=None, description="adversarial")
    responses: list[dict[str, Any]] | None = Field(default=None, description="vote")
    selected: int | None = Field(default=None, description="vote")
    content: str | None = Field(default=None, description="vote")
    judge: str | None = Field(default=None, description="vote")
    rationale: str | None = Field(default=None, description="vote")
    refined_response: str | None = Field(default=None, description="refine")
    iterations: int | None = Field(default=None, description="refine")
    model: str | None = Field(default=None, description="refine")
    parsed: Any = Field(default=None, description="with output_schema: the parsed JSON")


class HealthStatus(BaseModel):
    status: Literal["ok"]


class ReadyStatus(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, str]


# -- admin -------------------------------------------------------------------------------

class ProviderIn(BaseModel):
    """A provider to create, or the fields to change (PATCH); ``api_key`` goes to the
    vault (unlock it first) and is never shown again. Unknown fields are kept."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    id: str | None = Field(default=None, description="required when creating")
    type: ProviderType | None = Field(default=None, description="required when creating")
    base_url: str | None = None
    endpoints: list[str] | None = None
    api_key_env: str | None = None
    enabled: bool | None = None
    timeout_s: float | None = Field(default=None, gt=0)
    anthropic_version: str | None = None
    api_key: SecretStr | None = Field(default=None, min_length=1, max_length=4096)


class ModelPatch(BaseModel):
    """The fields of a model to change; unknown fields are kept."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    provider: str | None = None
    upstream_model: str | None = None
    weight: float | None = Field(default=None, ge=0, le=10)
    max_context_tokens: int | None = Field(default=None, gt=0)
    input_per_1k: float | None = Field(default=None, ge=0)
    output_per_1k: float | None = Field(default=None, ge=0)
    enabled: bool | None = None
    aliases: list[str] | None = None
    cache_ttl_s: int | None = Field(default=None, gt=0)  # null: only requests opt in


class ProviderOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    type: ProviderType
    base_url: str | None
    endpoints: list[str] | None
    api_key_env: str | None
    enabled: bool
    timeout_s: float | None
    anthropic_version: str
    uses_vault: bool
    has_key: bool


class ProviderList(BaseModel):
    data: list[ProviderOut]


class ModelPage(BaseModel):
    data: list[ModelConfig]


class Deleted(BaseModel):
    deleted: str


class VaultState(BaseModel):
    state: str


class IssuedKey(BaseModel):
    token: str = Field(description="the full thk_… token, shown once")
    key: ApiKeyInfo
    note: str | None = None


class KeyInfo(BaseModel):
    key: ApiKeyInfo


class KeyList(BaseModel):
    data: list[ApiKeyInfo]
    scopes: list[str]


class AuditPage(BaseModel):
    data: list[AuditEntry]
    next_cursor: int | None


class SimulatedCandidate(BaseModel):
    model: str
    provider: str
    score: float
    estimated_cost_usd: float
    reason: str


class SimulatedRoute(BaseModel):
    policy: dict[str, Any]
    estimated_input_tokens: int
    assumed_output_tokens: int
    reason: str
    candidates: list[SimulatedCandidate]
    excluded: list[dict[str, Any]]


class EmbeddingItem(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str  # floats, or base64 of little-endian float32


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(BaseModel):
    """``POST /v1/embeddings`` answer (OpenAI's format)."""

    object: Literal["list"] = "list"
    data: list[EmbeddingItem]
    model: str
    usage: EmbeddingUsage
