"""The one live catalog, used by the gateway and by every worker.

A process's catalog is the file/environment definitions (:func:`shared.config.load_catalog`)
merged with the database's (admin API, :mod:`shared.store.catalog`; the DB wins on the same
id), plus the provider keys held in the credential vault, all behind one
:class:`ProviderRegistry`. :class:`LiveCatalog` holds ``catalog``, ``registry`` and
``version`` and swaps them as one on :meth:`LiveCatalog.reload`; the replaced registry stays
open ``GRACE_S`` seconds for the requests already using its adapters, then is closed.

Runtime settings ride the same mechanism: the routing config and the retention settings
(``runtime_config`` rows, written with a version bump) are re-read on every reload into
``routing`` and ``retention``; discovered models (shared/discovery.py) are merged under the
file and DB definitions.

Change propagation. Every admin change of the catalog (provider/model upsert or delete,
vault key put or delete, vault initialization or rotation) bumps the one-row
``catalog_version`` table in the change's own transaction. The process that made the change
reloads at once; every process (each gateway process of ``tokenhub serve --workers N``,
each ``tokenhub worker``) polls that row every ``TOKENHUB_CATALOG_POLL_S`` seconds (default
1.0) and reloads when it moved. Polling, not notification: SQLite has no LISTEN/NOTIFY, and
one code path for both databases is worth more than PostgreSQL's push; the poll is one
primary-key SELECT of one row in a short session. Measured (scripts/catalog_poll_cost.py,
2,000 polls that find no change, the 2-CPU dev box): SQLite file (WAL) 0.9-1.0 ms of
process CPU per poll (mostly aiosqlite's thread hops and the pool's reset, not the query),
wall median ~1 ms; PostgreSQL (asyncpg, loopback) ~1.1 ms of client CPU. At the default
1 s interval that is ~0.1 % of one CPU per process. A worker that is asked for a provider it
does not know (or knows without its key) checks the version once before failing, so a
change it has not polled yet costs no failover (:meth:`LiveCatalog.adapter`).

Vault keys outside the gateway. The gateway's vault is unlocked by the admin (API) or by
``TOKENHUB_VAULT_PASSWORD``; a worker is another process with its own memory, so it unlocks
the same vault (same database) itself with the same admin password, given to it by
``TOKENHUB_VAULT_PASSWORD`` or ``TOKENHUB_VAULT_PASSWORD_FILE``. It never initializes the
vault (``Vault.unlock(..., initialize=False)``); if the vault does not exist yet it tries
again on the next catalog version change (initialization bumps the version). Keys are
decrypted into process memory only: workflow inputs carry provider ids (``ModelCall`` /
``ModelSpec`` hold no key), the worker's registry resolves the id to an adapter holding the
key at call time, and every decrypted key is added to the process's ``SecretRegistry`` so
logs redact it. A vault-backed provider whose key this process cannot get gets a
:class:`~shared.providers.keyless.KeylessAdapter`: each call fails at once as a ``fatal``
provider error naming the fix; upstream is never called without the key. Rejected: passing
keys in workflow inputs (they would sit in clear in Temporal's history) and a key service
in the gateway (a new network surface, and the worker could not run without the gateway).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TypeVar

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.config import Catalog, ModelConfig, ProviderConfig, Settings
from shared.errors import NotFound, TokenHubError, Unauthorized, VaultLocked
from shared.providers.base import ProviderAdapter
from shared.providers.registry import ProviderRegistry
from shared.routing.config import RoutingConfig, RoutingDefaults
from shared.security.redact import SecretRegistry
from shared.security.vault import Vault, VaultError, VaultUninitialized
from shared.store import catalog as store_catalog
from shared.store import runtime as store_runtime
from shared.store.retention import RetentionConfig, TableRetention

log = logging.getLogger("tokenhub.catalog")

GRACE_S = 30.0  # a replaced registry stays open this long for requests already using it
FIX_WORKER = "set TOKENHUB_VAULT_PASSWORD or TOKENHUB_VAULT_PASSWORD_FILE"
FIX_GATEWAY = ("unlock the vault (POST /admin/v1/vault/unlock) or set "
               "TOKENHUB_VAULT_PASSWORD or TOKENHUB_VAULT_PASSWORD_FILE")
Listener = Callable[["LiveCatalog"], None]
_Config = TypeVar("_Config", RoutingConfig, RetentionConfig)


def routing_from_settings(settings: Settings) -> RoutingConfig:
    """The routing config before any admin change: TOKENHUB_DEFAULT_* and SPEC §4's weights."""
    return RoutingConfig(defaults=RoutingDefaults(
        mode=settings.default_mode, max_budget_usd=settings.default_max_budget_usd,
        max_latency_ms=settings.default_max_latency_ms, min_weight=settings.default_min_weight))


def retention_from_settings(settings: Settings) -> RetentionConfig:
    """The retention before any admin change: TOKENHUB_RETENTION_*."""
    s = settings
    return RetentionConfig(
        request_log=TableRetention(days=s.retention_request_log_days,
                                   rows=s.retention_request_log_rows),
        rewards=TableRetention(days=s.retention_rewards_days, rows=s.retention_rewards_rows),
        audit=TableRetention(days=s.retention_audit_days, rows=s.retention_audit_rows))


def process_secrets(settings: Settings, catalog: Catalog) -> SecretRegistry:
    """A SecretRegistry holding this process's configured secrets (settings, keys of the
    file/env providers); the live catalog adds vault keys as it decrypts them."""
    registry = SecretRegistry()
    for secret in (settings.admin_token, settings.vault_password, settings.api_key_pepper,
                   settings.openai_api_key, settings.anthropic_api_key):
        registry.add(secret.get_secret_value() if secret else None)
    for p in catalog.providers:
        registry.add(p.resolve_key())
    payload_keys = settings.read_payload_keys()  # a ConfigError here stops the start
    for text in payload_keys.texts() if payload_keys else ():
        registry.add(text)
    return registry


class LiveCatalog:
    """File + env + DB definitions and vault keys, reloaded when the catalog version moves.

    ``vault``: the process's vault, or None (vault-backed providers are then keyless).
    ``password``: unlock ``vault`` with it when it is locked (never initializing it); the
    gateway passes None (it unlocks at start and through the admin API, and honours
    auto-lock). ``role`` names this process in the keyless error ("worker", "gateway").
    """

    def __init__(self, settings: Settings, base: Catalog,
                 sessionmaker: async_sessionmaker[AsyncSession], *,
                 vault: Vault | None = None, secrets: SecretRegistry | None = None,
                 password: str | None = None, role: str = "worker",
                 grace_s: float = GRACE_S) -> None:
        self.settings = settings
        self.base = base
        self.vault = vault
        self.secrets = secrets if secrets is not None else SecretRegistry()
        self.catalog = base
        self.version = -1  # before the first load
        self.vault_keys: dict[str, str] = {}
        self.vault_problem: str | None = None  # why vault keys are unavailable, if known
        # runtime settings every process agrees on (admin API, stored with the catalog)
        self.routing = routing_from_settings(settings)
        self.retention = retention_from_settings(settings)
        self.discovered: dict[str, list[ModelConfig]] = {}  # provider id → models (discovery)
        self._sm = sessionmaker
        self._password = password
        self._role = role
        self._grace = grace_s
        self._lock = asyncio.Lock()
        self._listeners: list[Listener] = []
        self._closing: set[asyncio.Task[None]] = set()
        self._poll: asyncio.Task[None] | None = None
        self.registry = self._registry(base)

    # -- reading -------------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(self)`` after every swap (the gateway mirrors it into AppState)."""
        self._listeners.append(listener)

    def missing_key_reason(self) -> str:
        why = f" ({self.vault_problem})" if self.vault_problem else ""
        fix = FIX_GATEWAY if self._role == "gateway" else FIX_WORKER
        return f"vault key unavailable on this {self._role}{why}: {fix}"

    async def adapter(self, provider_id: str) -> ProviderAdapter:
        """The adapter for ``provider_id`` at call time. An unknown provider (or one known
        without its key) may come from a change not polled yet: check the version once."""
        if not self.registry.usable(provider_id):
            await self.refresh_if_changed()
        return self.registry.get(provider_id)

    # -- reloading -----------------------------------------------------------------------
    async def read_version(self) -> int:
        async with self._sm() as s:
            return await store_catalog.read_version(s)

    async def refresh_if_changed(self) -> bool:
        """Reload when the DB's catalog version differs from ours; True if it did."""
        if await self.read_version() == self.version:
            return False
        async with self._lock:
            if await self.read_version() == self.version:
                return False  # another caller reloaded meanwhile
            await self._reload()
        return True

    async def reload(self) -> None:
        """Re-read the DB definitions and vault keys, and swap in a new registry."""
        async with self._lock:
            await self._reload()

    async def _reload(self) -> None:
        async with self._sm() as s:
            version = await store_catalog.read_version(s)  # first: a later change reloads
            providers, models, aliases = await store_catalog.load(s)
            stored = await store_runtime.load(s)
        catalog = store_catalog.merge(self._base_with_discovered(), providers, models, aliases)
        self.routing = self._stored(RoutingConfig, stored.get(store_runtime.ROUTING),
                                    routing_from_settings(self.settings))
        self.retention = self._stored(RetentionConfig, stored.get(store_runtime.RETENTION),
                                      retention_from_settings(self.settings))
        keys = await self._vault_keys(catalog)
        for p in catalog.providers:  # env-held keys of DB-defined providers, for redaction
            if not p.uses_vault:
                self.secrets.add(p.resolve_key())
        old = self.registry
        self.vault_keys = keys
        self.registry = self._registry(catalog)
        self.catalog, self.version = catalog, version
        for listener in self._listeners:
            listener(self)
        task = asyncio.create_task(self._close_later(old), name="catalog-close-registry")
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def _base_with_discovered(self) -> Catalog:
        """File/env definitions plus discovered models (a defined model wins on its id)."""
        if not self.discovered:
            return self.base
        known = {m.id for m in self.base.models} | set(self.base.alias_targets())
        extra = []
        for models in self.discovered.values():
            for m in models:
                if m.id not in known:
                    known.add(m.id)
                    extra.append(m)
        return self.base.model_copy(update={"models": [*self.base.models, *extra]})

    async def set_discovered(self, found: dict[str, list[ModelConfig]]) -> None:
        """Replace the discovered models of the providers in ``found`` (shared/discovery.py);
        reload when that changes anything."""
        merged = {**self.discovered, **found}
        if merged == self.discovered:
            return
        async with self._lock:
            self.discovered = merged
            await self._reload()

    @staticmethod
    def _stored(kind: type[_Config], value: dict[str, object] | None, default: _Config
                ) -> _Config:
        if value is None:
            return default
        try:
            return kind.model_validate(value)
        except ValidationError as err:  # written by another version: keep running
            log.error("stored %s is invalid, using the defaults: %s", kind.__name__, err)
            return default

    def _registry(self, catalog: Catalog) -> ProviderRegistry:
        keys = self.vault_keys

        def lookup(p: ProviderConfig) -> str | None:
            return keys.get(p.id) if p.uses_vault else p.resolve_key()

        return ProviderRegistry(catalog, self.settings, key_lookup=lookup,
                                missing_vault_key=self.missing_key_reason())

    async def _vault_keys(self, catalog: Catalog) -> dict[str, str]:
        wanted = [p.id for p in catalog.providers if p.uses_vault]
        vault = self.vault
        if not wanted or vault is None:
            return {}
        if not vault.is_unlocked and self._password is not None:
            await self._unlock(vault)
        keys: dict[str, str] = {}
        for pid in wanted:
            if not vault.is_unlocked:
                break
            try:
                keys[pid] = await vault.get_secret(pid)
            except NotFound:
                continue
            except VaultLocked:  # auto-locked meanwhile
                break
            except VaultError:  # our key no longer opens it: rotated since we unlocked
                vault.lock()
                if self._password is None:
                    break
                await self._unlock(vault)
                with contextlib.suppress(NotFound, VaultLocked, VaultError):
                    keys[pid] = await vault.get_secret(pid)
        for key in keys.values():
            self.secrets.add(key)
        if vault.is_unlocked:
            self.vault_problem = None
        elif self.vault_problem is None:
            self.vault_problem = "the vault is locked"
        return keys

    async def _unlock(self, vault: Vault) -> None:
        assert self._password is not None
        try:
            await vault.unlock(self._password, initialize=False)
        except VaultUninitialized:
            self.vault_problem = "the vault is not initialized yet"
            log.info("vault not initialized yet: vault-backed providers wait for it")
        except Unauthorized:
            self.vault_problem = "the configured vault password is wrong (rotated?)"
            log.error("TOKENHUB_VAULT_PASSWORD(_FILE) does not unlock the vault: "
                      "vault-backed providers are unavailable on this %s", self._role)
        except TokenHubError as exc:
            self.vault_problem = exc.message
            log.error("could not unlock the vault: %s", exc.message)
        else:
            self.vault_problem = None

    async def _close_later(self, registry: ProviderRegistry) -> None:
        try:
            await asyncio.sleep(self._grace)
        finally:  # also on shutdown (cancelled)
            await registry.aclose()

    # -- polling -------------------------------------------------------------------------
    async def poll(self, interval_s: float | None = None) -> None:
        """Refresh every ``interval_s`` (TOKENHUB_CATALOG_POLL_S) seconds, forever; a
        failed refresh is logged (once per failure streak) and retried next time."""
        interval = interval_s if interval_s is not None else self.settings.catalog_poll_s
        failing = False
        while True:
            await asyncio.sleep(interval)
            try:
                await self.refresh_if_changed()
            except Exception:
                if not failing:
                    log.exception("catalog refresh failed (retrying every %.1f s)", interval)
                failing = True
            else:
                failing = False

    def start_polling(self, interval_s: float | None = None) -> asyncio.Task[None]:
        if self._poll is None or self._poll.done():
            self._poll = asyncio.create_task(self.poll(interval_s), name="catalog-poll")
        return self._poll

    async def aclose(self) -> None:
        """Stop polling, close the current registry and those in their grace period."""
        tasks = [t for t in (self._poll, *self._closing) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.registry.aclose()
        self.vault_keys.clear()
