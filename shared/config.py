"""Settings (``TOKENHUB_*`` environment, optional ``.env``) and the provider/model catalog.

Nothing here runs at import time: the entrypoint calls :func:`load_settings`
and :func:`load_catalog` and passes the results down.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared.contracts import MODES, Mode
from shared.errors import ConfigError
from shared.security.payload_keys import PayloadKeys, parse_payload_keys

# the pydantic error type of an alias named like a model (the admin API answers 409)
ProviderType = Literal["openai", "anthropic", "vllm", "simulated"]
ModelKind = Literal["chat", "embedding"]

# Catalog ids (providers, models, aliases) travel in response headers (X-TokenHub-Model,
# X-TokenHub-Provider), URLs of the admin API, metric labels and logs: printable ASCII
# only, starting with a letter or digit, at most 128 characters. Enough for real ids:
# gpt-4o-mini, claude-3-5-haiku-latest, meta-llama/Llama-3.1-8B-Instruct, qwen2.5:7b,
# org/model@rev, my_model+ft.
CATALOG_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/@+\-_]{0,127}$"
CatalogId = Annotated[str, StringConstraints(pattern=CATALOG_ID_PATTERN)]
RESERVED_IDS = frozenset({"auto"})  # "model": "auto" means: route by policy
CONFLICT = "catalog_conflict"  # the error type of an id clash (409 on the admin API)


class Settings(BaseSettings):
    """Effective configuration. Every field is ``TOKENHUB_<FIELD>`` in the environment."""

    model_config = SettingsConfigDict(
        env_prefix="TOKENHUB_", env_file=".env", extra="ignore", validate_default=True,
        populate_by_name=True,
    )

    env: Literal["development", "production", "test"] = "production"
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    data_dir: Path = Path(".tokenhub")
    database_url: str | None = None
    config: Path | None = None  # YAML catalog of providers and models
    log_level: str = "INFO"
    # "auto": human-readable text when stderr is a terminal, JSON lines otherwise
    log_format: Literal["auto", "json", "text"] = "auto"
    log_bodies: bool = False
    # "auto": uvloop when installed (uvicorn[standard] brings it), else asyncio. uvloop
    # serves ~25 % more req/s with 2 workers at c=64 here (bench/); an earlier RSS growth
    # under uvloop was the request-log backlog, fixed since (soak +1.3 % over 21k requests).
    event_loop: Literal["auto", "asyncio", "uvloop"] = "auto"
    max_body_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    # A repeated X-Request-ID within this window gets the first run's result (same body)
    # or 409 (different body); older ids are fresh again.
    idempotency_window_s: float = Field(default=24 * 3600.0, gt=0)

    # Request limits (README "Limits"): every one bounds what one client can make the
    # gateway hold or compute before it is refused.
    max_header_bytes: int = Field(default=32 * 1024, ge=1024, le=16 * 1024 * 1024)
    header_timeout_s: float = Field(default=10.0, gt=0, le=3600)  # request line + headers
    body_timeout_s: float = Field(default=60.0, gt=0, le=3600)  # the whole body, after them
    max_json_items: int = Field(default=50_000, ge=100)  # strings, objects, arrays, commas
    max_messages: int = Field(default=2048, ge=1)
    max_directive_lines: int = Field(default=200, ge=1)
    # Batches (README "Batches"): an uploaded JSONL file's size and line count; items of
    # one batch run at most this many at a time
    max_batch_file_bytes: int = Field(default=200 * 1024 * 1024, ge=1024)
    max_batch_items: int = Field(default=50_000, ge=1)
    batch_max_concurrency: int = Field(default=8, ge=1, le=1024)
    # a batch's workflow continues as new after this many items (its history stays small)
    batch_items_per_run: int = Field(default=2000, ge=10, le=10_000)
    # 1: each item its own child Chat/Plan workflow; n: items run n to a BatchChunkWorkflow
    # (measured, bench/results/batches.md: 25 to a chunk runs 3× the items/s of one child
    # per item and needs a fifth of the dev server's CPU per item)
    batch_group_size: int = Field(default=25, ge=1, le=100)

    # Env shortcuts registering providers (SPEC §5). The providers' usual variable names
    # (OPENAI_API_KEY, ANTHROPIC_API_KEY) are honoured too; TOKENHUB_* wins when both are set.
    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("TOKENHUB_OPENAI_API_KEY", "OPENAI_API_KEY"))
    openai_base_url: str = "https://api.openai.com/v1"
    anthropic_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("TOKENHUB_ANTHROPIC_API_KEY", "ANTHROPIC_API_KEY"))
    anthropic_base_url: str = "https://api.anthropic.com/v1"
    vllm_endpoints: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Models of the TOKENHUB_VLLM_ENDPOINTS provider are discovered from its /v1/models at
    # start (retried while unreachable) and every ``vllm_discovery_interval_s`` seconds.
    vllm_discovery_interval_s: float = Field(default=60.0, gt=0)
    vllm_model_weight: float = Field(default=5.0, ge=0, le=10)
    vllm_context_tokens: int = Field(default=8192, gt=0)  # when the server reports none
    vllm_input_per_1k: float = Field(default=0.0, ge=0)
    vllm_output_per_1k: float = Field(default=0.0, ge=0)
    simulated_provider: bool | None = None  # None: on when no provider is configured

    # Provider HTTP.
    connect_timeout_s: float = Field(default=5.0, gt=0)
    read_timeout_s: float = Field(default=120.0, gt=0)
    max_connections_per_provider: int = Field(default=256, gt=0)
    # One model may hold at most this share of its provider's connections (at least one),
    # so a slow model cannot starve the provider's other models.
    model_connection_share: float = Field(default=0.5, gt=0, le=1)

    # Routing defaults (SPEC §4).
    default_mode: Mode = "normal"
    default_max_budget_usd: float = Field(default=0.05, ge=0)
    default_max_latency_ms: int = Field(default=20000, gt=0)
    default_min_weight: float = Field(default=0.0, ge=0, le=10)
    max_attempts: int = Field(default=8, ge=1)

    # Security (SPEC §6).
    admin_token: SecretStr | None = None  # unset: generated and printed once at startup
    require_api_key: bool | None = None  # unset: required except in development
    api_key_pepper: SecretStr | None = None  # unset: generated once into the data dir
    vault_password: SecretStr | None = None  # unlocks the vault at start (headless runs)
    vault_password_file: Path | None = None  # a file holding it (whitespace stripped)
    vault_autolock_minutes: float | None = Field(default=None, gt=0)  # unset: never
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    rate_limit_rps: float = Field(default=60.0, gt=0)
    rate_limit_burst: float = Field(default=120.0, gt=0)
    admin_rate_limit_rps: float = Field(default=30.0, gt=0)
    admin_rate_limit_burst: float = Field(default=60.0, gt=0)
    # set by `serve --workers N` for its processes: each enforces 1/N of the rate limits
    gateway_processes: int = Field(default=1, ge=1)
    # a budget hold of a process that crashed is released after this (budgets.py)
    budget_reservation_ttl_s: float = Field(default=900.0, gt=0)

    # Feedback (README "Feedback"): a user's score becomes a reward row that counts as this
    # many automatic observations in the Thompson posteriors (0: stored, never steers).
    feedback_weight: float = Field(default=1.0, ge=0, le=100)

    # Exact response cache (README "Caching"): the database by default, Redis when
    # ``cache_url`` is set; entries shared across API keys only with scope "global".
    cache_url: str | None = None
    cache_scope: Literal["key", "global"] = "key"
    cache_max_ttl_s: int = Field(default=86400, gt=0)
    cache_sweep_interval_s: float = Field(default=60.0, gt=0)  # expired DB rows deleted
    # recently used entries kept in each process in front of the store (0: none)
    cache_memory_entries: int = Field(default=1024, ge=0)

    # The live catalog (shared/catalog.py): every process polls the DB's catalog version.
    catalog_poll_s: float = Field(default=1.0, gt=0)

    # Retention (shared/store/retention.py): initial values; PUT /admin/v1/retention
    # changes them at runtime. Unset = no limit of that kind.
    retention_request_log_days: float | None = Field(default=30, gt=0)
    retention_request_log_rows: int | None = Field(default=None, gt=0)
    retention_rewards_days: float | None = Field(default=90, gt=0)
    retention_rewards_rows: int | None = Field(default=None, gt=0)
    retention_audit_days: float | None = Field(default=365, gt=0)
    retention_audit_rows: int | None = Field(default=None, gt=0)
    retention_prune_interval_s: float = Field(default=300.0, gt=0)

    # Temporal (workflow-first execution, SPEC §2).
    temporal_enabled: bool = True
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_task_queue: str = "tokenhub"
    temporal_ui_port: int = Field(default=8233, ge=1, le=65535)  # `tokenhub dev`'s dev server
    temporal_ui_url: str = ""  # empty: http://<host of temporal_address>:<temporal_ui_port>
    temporal_start_timeout_s: float = Field(default=2.0, gt=0)
    temporal_connect_timeout_s: float = Field(default=2.0, gt=0)
    temporal_circuit_failures: int = Field(default=3, ge=1)
    temporal_circuit_cooldown_s: float = Field(default=10.0, gt=0)
    temporal_heartbeat_timeout_s: float = Field(default=10.0, gt=0)
    # Provider calls as local activities: "chat" (default) for chat runs, "all" for plan
    # runs too, "none". A chat run makes one successful call; as a local activity its
    # result is recorded when the workflow task completes, so a worker crash repeats it
    # only if it falls in that millisecond window, besides the in-flight window a regular
    # activity has as well; it saves an activity task round trip and a workflow task
    # (measured in bench/: ~35-45 % less dev-server CPU per run). A plan makes several calls:
    # as regular activities each completed one is durable before the next starts.
    temporal_local_activities: Literal["none", "chat", "all"] = "chat"
    temporal_embedded_worker: bool = False  # a worker inside the gateway (eager start)
    # Workflow code in Temporal's sandbox (re-checks determinism at run time, ~40 % more
    # worker CPU per run, measured in bench/). Off by default: the workflow modules are
    # lint-restricted (ruff TID251) and the test suite replays every scenario's history
    # under the sandbox (tests/parity), so a violation fails CI instead of production.
    temporal_workflow_sandbox: bool = False
    # Durable streams (README "Streaming"): "local" = the stream's provider call runs on
    # this gateway's own task queue and hands deltas to the client in-process (the
    # Workflow Stream, batched, is the durable record); "subscribe" = the call runs on the
    # shared workers and the gateway relays the Workflow Stream (slower, measured in bench/).
    temporal_stream_relay: Literal["local", "subscribe"] = "local"
    temporal_stream_batch_ms: float = Field(default=100.0, gt=0)  # Workflow Stream batching
    # a stream call on a dead process is retried (elsewhere) after this
    temporal_stream_heartbeat_timeout_s: float = Field(default=2.0, gt=0)

    # Payload encryption (README "Privacy of runs", engine/codec.py): AES-256-GCM over every
    # payload the gateway and the workers hand to Temporal (inputs, results, memos, failure
    # messages). "<key id>:<base64 of 32 bytes>", several comma-separated: the first
    # encrypts, all decrypt (rotation). The file form suits Docker/Kubernetes secrets.
    temporal_payload_keys: SecretStr | None = None
    temporal_payload_keys_file: Path | None = None
    # refuse to start without a key (docker-compose.yml sets it: no silent clear text)
    temporal_require_payload_keys: bool = False
    # the codec server (/codec/decode, /codec/encode) needs the admin token (Bearer or the
    # /codec/session cookie); unset: required except in development (`tokenhub dev`, whose
    # UI on loopback then shows readable runs with no set-up)
    codec_require_auth: bool | None = None
    # X-TokenHub-Run-URL on the responses of workflow runs; unset: on when
    # TOKENHUB_TEMPORAL_UI_URL is set explicitly, or in development
    temporal_run_links: bool | None = None

    @field_validator("temporal_local_activities", mode="before")
    @classmethod
    def _local_activities_bool(cls, v: object) -> object:
        """Accept the earlier boolean form: true → "all", false → "none"."""
        if isinstance(v, bool):
            return "all" if v else "none"
        if isinstance(v, str) and v.strip().lower() in ("true", "1", "yes", "false", "0", "no"):
            return "all" if v.strip().lower() in ("true", "1", "yes") else "none"
        return v

    @field_validator("vllm_endpoints", "cors_origins", "trusted_proxies", mode="before")
    @classmethod
    def _split_endpoints(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [p.strip() for p in v.split(",") if p.strip()]
        return v

    @field_validator("default_mode", mode="before")
    @classmethod
    def _known_mode(cls, v: Any) -> Any:
        if isinstance(v, str) and v not in MODES:
            raise ValueError(f"must be one of {', '.join(MODES)}")
        return v

    @field_validator("trusted_proxies")
    @classmethod
    def _cidrs(cls, v: list[str]) -> list[str]:
        import ipaddress

        for c in v:
            ipaddress.ip_network(c, strict=False)  # ValueError names the bad entry
        return v

    @model_validator(mode="after")
    def _derive_ui_url(self) -> Settings:
        if self.temporal_run_links is None:  # a derived URL may be an internal address
            self.temporal_run_links = bool(self.temporal_ui_url) or self.env == "development"
        self.temporal_ui_url = self.temporal_ui_url.rstrip("/")
        if not self.temporal_ui_url:
            self.temporal_ui_url = f"http://{self.temporal_host}:{self.temporal_ui_port}"
        return self

    @property
    def temporal_host(self) -> str:
        host, sep, _ = self.temporal_address.rpartition(":")
        return (host if sep else self.temporal_address) or "127.0.0.1"

    @property
    def temporal_port(self) -> int:
        """The port of ``temporal_address`` (7233 when it names none)."""
        _, sep, port = self.temporal_address.rpartition(":")
        return int(port) if sep and port.isdigit() else 7233

    @property
    def api_keys_required(self) -> bool:
        if self.require_api_key is not None:
            return self.require_api_key
        return self.env != "development"

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'tokenhub.db').resolve()}"

    def read_vault_password(self) -> str | None:
        """TOKENHUB_VAULT_PASSWORD, else the content of TOKENHUB_VAULT_PASSWORD_FILE
        (surrounding whitespace stripped); None when neither is set."""
        if self.vault_password is not None and self.vault_password.get_secret_value():
            return self.vault_password.get_secret_value()  # empty counts as unset
        if self.vault_password_file is None:
            return None
        try:
            value = self.vault_password_file.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"TOKENHUB_VAULT_PASSWORD_FILE: cannot read "
                              f"{self.vault_password_file}: {exc.strerror}") from None
        if not value:
            raise ConfigError(f"TOKENHUB_VAULT_PASSWORD_FILE: {self.vault_password_file} "
                              "is empty")
        return value

    @property
    def codec_auth_required(self) -> bool:
        if self.codec_require_auth is not None:
            return self.codec_require_auth
        return self.env != "development"

    def read_payload_keys(self) -> PayloadKeys | None:
        """TOKENHUB_TEMPORAL_PAYLOAD_KEYS, else the content of …_FILE; None when neither is
        set (payloads then travel in clear), a ConfigError when
        TOKENHUB_TEMPORAL_REQUIRE_PAYLOAD_KEYS asks for one."""
        keys = self.temporal_payload_keys
        if keys is not None and keys.get_secret_value().strip():
            return parse_payload_keys(keys.get_secret_value(),
                                      source="TOKENHUB_TEMPORAL_PAYLOAD_KEYS")
        path = self.temporal_payload_keys_file
        if path is not None:
            source = "TOKENHUB_TEMPORAL_PAYLOAD_KEYS_FILE"
            try:
                text = path.read_text()
            except OSError as exc:
                raise ConfigError(f"{source}: cannot read {path}: {exc.strerror}") from None
            return parse_payload_keys(text, source=f"{source} ({path})")
        if self.temporal_require_payload_keys:
            raise ConfigError(
                "TOKENHUB_TEMPORAL_PAYLOAD_KEYS (or _FILE) is required "
                "(TOKENHUB_TEMPORAL_REQUIRE_PAYLOAD_KEYS): generate one with "
                "`tokenhub codec-key`")
        return None

    def masked(self) -> dict[str, Any]:
        """Settings as a dict with every secret masked (for ``tokenhub config``)."""
        out: dict[str, Any] = {}
        for name, value in self.model_dump().items():
            if isinstance(getattr(self, name), SecretStr):
                out[name] = "********" if value else None
            elif name == "database_url" and isinstance(value, str):
                out[name] = _mask_url(value)
            else:
                out[name] = str(value) if isinstance(value, Path) else value
        out["effective_database_url"] = _mask_url(self.effective_database_url)
        return out


def _mask_url(url: str) -> str:
    """Hide the password of ``scheme://user:password@host``."""
    if "://" not in url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    if ":" in creds:
        creds = creds.split(":", 1)[0] + ":********"
    return f"{scheme}://{creds}@{host}"


class ProviderConfig(BaseModel):
    """One provider of the catalog."""

    model_config = ConfigDict(extra="allow")

    id: CatalogId
    type: ProviderType
    base_url: str | None = None
    endpoints: list[str] | None = None
    api_key_env: str | None = None
    api_key: SecretStr | None = Field(default=None, exclude=True)
    enabled: bool = True
    timeout_s: float | None = Field(default=None, gt=0)
    anthropic_version: str = "2023-06-01"
    uses_vault: bool = False  # the key is in the credential vault (admin API)
    # models discovered from the provider's model list at start and periodically
    # (shared/discovery.py); on for the TOKENHUB_VLLM_ENDPOINTS provider
    discover: bool = False

    @model_validator(mode="after")
    def _urls(self) -> ProviderConfig:
        if self.type == "simulated":
            return self
        if not self.base_url and not self.endpoints:
            raise ValueError("needs base_url (or endpoints for vllm)")
        if self.endpoints and self.type != "vllm":
            raise ValueError("endpoints is only for type vllm; use base_url")
        for url in [self.base_url or "", *(self.endpoints or [])]:
            if url and not url.startswith(("http://", "https://")):
                raise ValueError(f"URL must start with http:// or https://: {url!r}")
        return self

    def urls(self) -> list[str]:
        return [u.rstrip("/") for u in (self.endpoints or [self.base_url or ""])]

    def resolve_key(self, environ: dict[str, str] | None = None) -> str | None:
        if self.api_key is not None:
            return self.api_key.get_secret_value()
        if self.api_key_env:
            return (environ if environ is not None else os.environ).get(self.api_key_env)
        return None


class ModelConfig(BaseModel):
    """One model of the catalog (SPEC §4 model record)."""

    model_config = ConfigDict(extra="allow")

    id: CatalogId
    provider: CatalogId
    upstream_model: str | None = None
    weight: float = Field(default=5, ge=0, le=10)
    max_context_tokens: int = Field(default=8192, gt=0)
    input_per_1k: float = Field(default=0.0, ge=0)
    output_per_1k: float = Field(default=0.0, ge=0)
    enabled: bool = True
    aliases: list[CatalogId] = Field(default_factory=list)
    # "embedding": served by POST /v1/embeddings only; chat routing never picks it (and
    # embeddings never pick a chat model)
    kind: ModelKind = "chat"
    # answers for this model are cached this long (README "Caching"); None: only on request
    cache_ttl_s: int | None = Field(default=None, gt=0)

    @property
    def upstream(self) -> str:
        return self.upstream_model or self.id


class AliasConfig(BaseModel):
    """An alias naming one or more models, with weights for an A/B split."""

    id: CatalogId
    targets: dict[CatalogId, float] = Field(min_length=1)
    cache_ttl_s: int | None = Field(default=None, gt=0)  # as ModelConfig's, for the alias

    @field_validator("targets")
    @classmethod
    def _positive(cls, v: dict[str, float]) -> dict[str, float]:
        if any(w < 0 for w in v.values()) or sum(v.values()) <= 0:
            raise ValueError("alias weights must be >= 0 and not all zero")
        return v


class Catalog(BaseModel):
    """Providers, models and aliases known to the gateway."""

    providers: list[ProviderConfig] = Field(default_factory=list)
    models: list[ModelConfig] = Field(default_factory=list)
    aliases: list[AliasConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Catalog:
        def clash(where: str, message: str) -> PydanticCustomError:
            return PydanticCustomError(CONFLICT, "{where}: {message}",
                                       {"where": where, "message": message})

        pids = [p.id for p in self.providers]
        for i, pid in enumerate(pids):
            if pid in pids[:i]:
                raise clash(f"providers.{i}.id", f"duplicate provider id {pid!r}")
        mids = [m.id for m in self.models]
        for i, mid in enumerate(mids):
            if mid in mids[:i]:
                raise clash(f"models.{i}.id", f"duplicate model id {mid!r}")
            if mid in RESERVED_IDS:
                raise clash(f"models.{i}.id", f"{mid!r} is reserved (route by policy)")
        for m in self.models:
            if m.provider not in pids:
                raise ValueError(f"model {m.id!r} names unknown provider {m.provider!r}")
        names = set(mids)
        for i, m in enumerate(self.models):
            for alias in m.aliases:
                if alias in names or alias in RESERVED_IDS:
                    raise clash(f"models.{i}.aliases", f"alias {alias!r} of model {m.id!r} "
                                "is already a model id (it would take that model's traffic)"
                                if alias in names else f"alias {alias!r} is reserved")
        for i, a in enumerate(self.aliases):
            if a.id in names or a.id in RESERVED_IDS:
                raise clash(f"aliases.{i}.id", f"alias {a.id!r} collides with a model id"
                            if a.id in names else f"alias {a.id!r} is reserved")
            for target in a.targets:
                if target not in mids:
                    raise ValueError(f"alias {a.id!r} names unknown model {target!r}")
        return self

    def model(self, model_id: str) -> ModelConfig | None:
        return next((m for m in self.models if m.id == model_id), None)

    def provider(self, provider_id: str) -> ProviderConfig | None:
        return next((p for p in self.providers if p.id == provider_id), None)

    def alias_targets(self) -> dict[str, dict[str, float]]:
        """Every alias (explicit, and those declared on a model) → {model id: weight}."""
        out: dict[str, dict[str, float]] = {a.id: dict(a.targets) for a in self.aliases}
        for m in self.models:
            for alias in m.aliases:
                out.setdefault(alias, {})[m.id] = 1.0
        return out


SIMULATED_PROVIDER_ID = "simulated"


def simulated_catalog() -> Catalog:
    """The clearly-labelled built-in simulated provider for a keyless first run."""
    prov = ProviderConfig(id=SIMULATED_PROVIDER_ID, type="simulated")
    return Catalog(
        providers=[prov],
        models=[
            ModelConfig(id="simulated-small", provider=prov.id, weight=3,
                        max_context_tokens=8192, input_per_1k=0.0001, output_per_1k=0.0002),
            ModelConfig(id="simulated-large", provider=prov.id, weight=8,
                        max_context_tokens=131072, input_per_1k=0.003, output_per_1k=0.006),
        ],
    )


def _env_catalog(settings: Settings) -> Catalog:
    providers: list[ProviderConfig] = []
    models: list[ModelConfig] = []
    if settings.openai_api_key:
        providers.append(ProviderConfig(id="openai", type="openai",
                                        base_url=settings.openai_base_url,
                                        api_key=settings.openai_api_key))
        models += [
            ModelConfig(id="gpt-4o-mini", provider="openai", weight=5, max_context_tokens=128000,
                        input_per_1k=0.00015, output_per_1k=0.0006),
            ModelConfig(id="gpt-4o", provider="openai", weight=8, max_context_tokens=128000,
                        input_per_1k=0.0025, output_per_1k=0.01),
        ]
    if settings.anthropic_api_key:
        providers.append(ProviderConfig(id="anthropic", type="anthropic",
                                        base_url=settings.anthropic_base_url,
                                        api_key=settings.anthropic_api_key))
        models += [
            ModelConfig(id="claude-haiku", provider="anthropic",
                        upstream_model="claude-3-5-haiku-latest", weight=5,
                        max_context_tokens=200000, input_per_1k=0.0008, output_per_1k=0.004),
            ModelConfig(id="claude-sonnet", provider="anthropic",
                        upstream_model="claude-sonnet-4-5", weight=9,
                        max_context_tokens=200000, input_per_1k=0.003, output_per_1k=0.015),
        ]
    if settings.vllm_endpoints:
        providers.append(ProviderConfig(id="vllm", type="vllm",
                                        endpoints=settings.vllm_endpoints, discover=True))
    return Catalog(providers=providers, models=models)


def _format_validation(err: ValidationError, where: str) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"])
        if not loc and e["type"] == CONFLICT:  # its message names the field
            parts.append(f"{where}{'.' if where else ''}{e['msg']}")
            continue
        parts.append(f"{where}{'.' if where else ''}{loc or '(root)'}: {e['msg']}")
    return "; ".join(parts)


def load_settings(**overrides: Any) -> Settings:
    """Build :class:`Settings` from the environment; raise ConfigError naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as err:
        names = []
        for e in err.errors():
            field = str(e["loc"][0]).upper() if e["loc"] else "?"
            var = field if field.startswith("TOKENHUB_") else f"TOKENHUB_{field}"
            names.append(f"{var}: {e['msg']}")
        raise ConfigError("invalid configuration: " + "; ".join(names)) from None


def load_catalog(settings: Settings) -> Catalog:
    """Catalog from the YAML file (if any) plus the env shortcuts."""
    data: dict[str, Any] = {}
    if settings.config is not None:
        path = settings.config
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except FileNotFoundError:
            raise ConfigError(f"TOKENHUB_CONFIG: file not found: {path}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"TOKENHUB_CONFIG: {path} is not valid YAML: {exc}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"TOKENHUB_CONFIG: {path} must hold a mapping")
        data = raw
    try:
        file_catalog = Catalog.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"TOKENHUB_CONFIG {settings.config}: "
                          + _format_validation(err, "")) from None
    env = _env_catalog(settings)
    merged_providers = list(file_catalog.providers)
    known = {p.id for p in merged_providers}
    merged_providers += [p for p in env.providers if p.id not in known]
    known_models = {m.id for m in file_catalog.models}
    merged_models = list(file_catalog.models) + [m for m in env.models if m.id not in known_models]
    try:
        catalog = Catalog(providers=merged_providers, models=merged_models,
                          aliases=file_catalog.aliases)
    except ValidationError as err:
        raise ConfigError("provider configuration: " + _format_validation(err, "")) from None
    use_sim = settings.simulated_provider
    if use_sim is None:
        use_sim = not catalog.providers
    if use_sim:
        sim = simulated_catalog()
        catalog = Catalog(providers=[*catalog.providers, *sim.providers],
                          models=[*catalog.models, *sim.models], aliases=catalog.aliases)
    return catalog
