"""Model discovery: what a provider serves, from its model list (``GET /v1/models``).

Used two ways. The admin API lists a provider's models and adds a selection
(``/admin/v1/providers/{id}/discover``, persisted like any admin model). Providers marked
``discover`` (the ``TOKENHUB_VLLM_ENDPOINTS`` provider, or ``discover: true`` in the YAML
file) get their models discovered by each gateway process at start and every
``TOKENHUB_VLLM_DISCOVERY_INTERVAL_S`` seconds (default 60); an unreachable provider is
retried (1 s, doubling up to the interval), never fatal. Discovered models sit under the
file and database definitions: a model defined there with the same id wins (that is how a
discovered model gets a price or another weight). Defaults of a discovered model: weight
``TOKENHUB_VLLM_MODEL_WEIGHT`` (5), context from the server when it reports one (vLLM's
``max_model_len``) else ``TOKENHUB_VLLM_CONTEXT_TOKENS`` (8192), prices
``TOKENHUB_VLLM_INPUT_PER_1K`` / ``…_OUTPUT_PER_1K`` (0).

Discovered models live in process memory (:class:`~shared.catalog.LiveCatalog`), not in the
database: they follow the server (a model it stops serving goes away), and a worker needs
none of them (workflow inputs carry the model record, the worker only the provider).
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import TYPE_CHECKING

from shared.config import ModelConfig, ProviderConfig, Settings
from shared.errors import ProviderError
from shared.providers.base import DiscoveredModel

if TYPE_CHECKING:
    from shared.catalog import LiveCatalog

log = logging.getLogger("tokenhub.discovery")

_UNSAFE = re.compile(r"[^A-Za-z0-9_.:-]+")
FIRST_TIMEOUT_S = 5.0  # the attempt at start waits this long at most


def safe_model_id(name: str) -> str:
    """A catalog id for an upstream model name (``org/model`` → ``org-model``)."""
    return _UNSAFE.sub("-", name).strip("-") or "model"


def model_config(provider: ProviderConfig, found: DiscoveredModel, settings: Settings, *,
                 model_id: str | None = None, weight: float | None = None) -> ModelConfig:
    """The catalog record of a discovered model, with the documented defaults."""
    return ModelConfig(
        id=model_id or safe_model_id(found.id), provider=provider.id, upstream_model=found.id,
        weight=settings.vllm_model_weight if weight is None else weight,
        max_context_tokens=found.max_context_tokens or settings.vllm_context_tokens,
        input_per_1k=settings.vllm_input_per_1k, output_per_1k=settings.vllm_output_per_1k)


async def refresh(live: LiveCatalog) -> bool:
    """Discover the models of every ``discover`` provider once; True if all answered.
    A provider that fails keeps the models it had."""
    ok = True
    found: dict[str, list[ModelConfig]] = {}
    for p in live.catalog.providers:
        if not (p.discover and p.enabled):
            continue
        try:
            adapter = live.registry.get(p.id)
            listed = await adapter.list_models()
        except ProviderError as err:
            ok = False
            log.warning("model discovery of provider %s failed (retrying): %s", p.id,
                        err.message)
            continue
        except Exception:
            ok = False
            log.exception("model discovery of provider %s failed (retrying)", p.id)
            continue
        found[p.id] = [model_config(p, m, live.settings) for m in listed]
    await live.set_discovered(found)
    return ok


async def run(live: LiveCatalog, *, interval_s: float | None = None,
              first_retry_s: float = 1.0, done_once: bool = False) -> None:
    """Refresh forever: every ``interval_s``, sooner (backing off) while a provider fails.
    ``done_once``: a refresh just succeeded, wait an interval first."""
    interval = interval_s if interval_s is not None else live.settings.vllm_discovery_interval_s
    retry = first_retry_s
    if done_once:
        await asyncio.sleep(interval)
    while True:
        try:
            ok = await refresh(live)
        except Exception:
            log.exception("model discovery failed")
            ok = False
        if ok:
            retry = first_retry_s
            await asyncio.sleep(interval)
        else:
            await asyncio.sleep(min(retry, interval))
            retry = min(retry * 2, interval)


async def start(live: LiveCatalog, *, interval_s: float | None = None) -> asyncio.Task[None]:
    """One attempt now (bounded by FIRST_TIMEOUT_S, so a dead server cannot hold the start),
    then the periodic refresh in the background."""
    ok = False
    if any(p.discover for p in live.catalog.providers):
        try:
            ok = await asyncio.wait_for(refresh(live), FIRST_TIMEOUT_S)
        except TimeoutError:
            log.warning("model discovery did not finish in %.0f s at start: retrying in the "
                        "background", FIRST_TIMEOUT_S)
    return asyncio.create_task(run(live, interval_s=interval_s, done_once=ok),
                               name="model-discovery")
