"""The gateway's per-process state, built in the lifespan and reached through deps."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.catalog import LiveCatalog, retention_from_settings, routing_from_settings
from shared.config import Catalog, Settings
from shared.orchestration.records import RunSummary
from shared.orchestration.retry import RetrySpec
from shared.providers.base import ProviderAdapter
from shared.providers.registry import ProviderRegistry
from shared.routing.config import RoutingConfig
from shared.routing.stats import HealthBook, StatsWindow
from shared.routing.thompson import PosteriorBook
from shared.routing.types import ModelSpec, ResolvedPolicy, RoutingContext
from shared.store.requestlog import RequestLogWriter
from shared.store.retention import RetentionConfig
from shared.telemetry.metrics import Metrics

DEFAULT_COOLDOWN_S = 10.0


def model_specs(catalog: Catalog) -> list[ModelSpec]:
    return [
        ModelSpec(id=m.id, provider_id=m.provider, upstream_model=m.upstream, weight=m.weight,
                  max_context_tokens=m.max_context_tokens, input_per_1k=m.input_per_1k,
                  output_per_1k=m.output_per_1k, kind=m.kind,
                  enabled=m.enabled and (p := catalog.provider(m.provider)) is not None
                  and p.enabled)
        for m in catalog.models
    ]


@dataclass
class AppState:
    settings: Settings
    catalog: Catalog
    registry: ProviderRegistry
    log_writer: RequestLogWriter
    metrics: Metrics
    sessionmaker: async_sessionmaker[AsyncSession]
    retry: RetrySpec = field(default_factory=RetrySpec)  # chat runs
    plan_retry: RetrySpec = field(default_factory=RetrySpec)  # plan runs
    stats: StatsWindow = field(default_factory=StatsWindow)
    health: HealthBook = field(default_factory=HealthBook)
    posteriors: PosteriorBook = field(default_factory=PosteriorBook)
    rng: random.Random = field(default_factory=random.Random)
    vault_keys: dict[str, str] = field(default_factory=dict)  # dropped on lock
    background: set[asyncio.Task[None]] = field(default_factory=set)
    base_catalog: Catalog | None = None  # file + env, before DB definitions
    # the process's live catalog (shared/catalog.py); api/catalog.py mirrors each of its
    # swaps into ``catalog``, ``registry`` and ``vault_keys`` above
    live: LiveCatalog | None = None
    _specs: list[ModelSpec] = field(default_factory=list)
    _aliases: dict[str, dict[str, float]] = field(default_factory=dict)
    # model and alias id → catalog cache_ttl_s (README "Caching"), those that have one
    cache_ttls: dict[str, int] = field(default_factory=dict)
    routing: RoutingConfig | None = None  # the live routing config (admin API); None: env
    _policy: ResolvedPolicy | None = None
    _weights: dict[str, tuple[float, float, float, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.base_catalog is None:
            self.base_catalog = self.catalog
        self.set_catalog(self.catalog)
        self.set_routing(self.routing or routing_from_settings(self.settings))

    def set_routing(self, config: RoutingConfig) -> None:
        """Swap the routing config (policy defaults, score weights): the next request uses it."""
        self.routing = config
        self._policy = config.policy()
        self._weights = config.weight_table()

    def set_catalog(self, catalog: Catalog) -> None:
        """Swap the catalog (admin changes take effect without restart)."""
        self.catalog = catalog
        self._specs = model_specs(catalog)
        self._aliases = catalog.alias_targets()
        self.cache_ttls = {m.id: m.cache_ttl_s for m in catalog.models if m.cache_ttl_s} | {
            a.id: a.cache_ttl_s for a in catalog.aliases if a.cache_ttl_s}

    async def adapter(self, provider_id: str) -> ProviderAdapter:
        """The adapter at call time (the live catalog's, which may first pick up a change
        made by another process and not polled yet)."""
        if self.live is not None:
            return await self.live.adapter(provider_id)
        return self.registry.get(provider_id)

    @property
    def retention(self) -> RetentionConfig:
        """The live retention settings (admin API), else the environment's."""
        if self.live is not None:
            return self.live.retention
        return retention_from_settings(self.settings)

    @property
    def default_policy(self) -> ResolvedPolicy:
        assert self._policy is not None  # set in __post_init__
        return self._policy

    def routing_context(self) -> RoutingContext:
        now = time.monotonic()
        return RoutingContext(models=self._specs, now=now, stats=self.stats.snapshot(),
                              health=self.health.snapshot(now),
                              posteriors=self.posteriors.snapshot(), aliases=self._aliases,
                              mode_weights=self._weights)

    def eligible_providers(self) -> list[str]:
        """Providers that could serve a request now: some enabled model of theirs, the
        provider enabled, registered with its key (a vault-backed provider whose key is
        unavailable does not count) and neither unhealthy nor cooling down."""
        now = time.monotonic()
        health = self.health.snapshot(now)
        out: set[str] = set()
        for spec in self._specs:
            pid = spec.provider_id
            if not spec.enabled or pid in out or not self.registry.usable(pid):
                continue
            h = health.get(pid)
            if h is not None and (not h.healthy or (h.cooldown_until or 0) > now):
                continue
            out.add(pid)
        return sorted(out)

    def known_model(self, name: str) -> bool:
        return name in self._aliases or any(m.id == name for m in self._specs)

    def observe_run(self, run: RunSummary) -> None:
        """Feed a run's attempts back into rolling stats and provider cool-downs, and its
        metrics into Prometheus (one summary, built by the orchestration)."""
        self.metrics.observe_run(run)
        now = time.monotonic()
        for a in run.attempts:
            ok = a.outcome == "ok"
            self.stats.observe(a.model, ok, a.latency_ms, now, a.output_tokens)
            if a.outcome == "rate_limited":
                wait = a.retry_after if a.retry_after is not None else DEFAULT_COOLDOWN_S
                self.health.cool_down(a.provider, now + wait, "rate limited (429)")
