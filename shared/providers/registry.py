"""Provider registry: one adapter (and one pooled HTTP client) per configured provider."""

from __future__ import annotations

from collections.abc import Callable

from shared.config import Catalog, ProviderConfig, Settings
from shared.errors import NotFound
from shared.providers.anthropic import AnthropicAdapter
from shared.providers.base import ProviderAdapter
from shared.providers.http import HttpClient, build_client
from shared.providers.keyless import KeylessAdapter
from shared.providers.openai import OpenAIAdapter, VLLMAdapter
from shared.providers.simulated import SimulatedAdapter

ClientFactory = Callable[[ProviderConfig], HttpClient]
KeyLookup = Callable[[ProviderConfig], str | None]
MISSING_VAULT_KEY = "vault key unavailable (the vault is locked here)"


class ProviderRegistry:
    def __init__(self, catalog: Catalog, settings: Settings, *,
                 client_factory: ClientFactory | None = None,
                 key_lookup: KeyLookup | None = None,
                 missing_vault_key: str = MISSING_VAULT_KEY) -> None:
        """``missing_vault_key``: the reason a vault-backed provider whose key
        ``key_lookup`` cannot give fails with (it is never called without its key)."""
        self._settings = settings
        self._missing_vault_key = missing_vault_key
        self._client_factory = client_factory or self._default_client
        self._key_lookup = key_lookup or (lambda p: p.resolve_key())
        self._adapters: dict[str, ProviderAdapter] = {}
        for provider in catalog.providers:
            if provider.enabled:
                self._adapters[provider.id] = self._build(provider)

    def _default_client(self, provider: ProviderConfig) -> HttpClient:
        s = self._settings
        return build_client(connect_timeout_s=s.connect_timeout_s,
                            read_timeout_s=provider.timeout_s or s.read_timeout_s,
                            max_connections=s.max_connections_per_provider,
                            model_share=s.model_connection_share)

    def _build(self, p: ProviderConfig) -> ProviderAdapter:
        if p.type == "simulated":
            return SimulatedAdapter(p.id)
        key = self._key_lookup(p)
        if p.uses_vault and not key:
            return KeylessAdapter(p.id, p.type, self._missing_vault_key)
        client = self._client_factory(p)
        if p.type == "anthropic":
            return AnthropicAdapter(p.id, client=client, base_url=p.urls()[0], api_key=key,
                                    version=p.anthropic_version)
        if p.type == "vllm":
            return VLLMAdapter(p.id, client=client, base_urls=p.urls(), api_key=key)
        return OpenAIAdapter(p.id, client=client, base_urls=p.urls(), api_key=key)

    def get(self, provider_id: str) -> ProviderAdapter:
        try:
            return self._adapters[provider_id]
        except KeyError:
            raise NotFound(f"provider {provider_id!r} is not registered") from None

    def usable(self, provider_id: str) -> bool:
        """Registered, and not a vault-backed provider whose key was unavailable."""
        adapter = self._adapters.get(provider_id)
        return adapter is not None and not isinstance(adapter, KeylessAdapter)

    def ids(self) -> list[str]:
        return list(self._adapters)

    async def replace(self, provider: ProviderConfig) -> None:
        """Add or rebuild a provider at runtime (admin changes, no restart)."""
        old = self._adapters.pop(provider.id, None)
        if provider.enabled:
            self._adapters[provider.id] = self._build(provider)
        if old is not None:
            await old.aclose()

    async def remove(self, provider_id: str) -> None:
        old = self._adapters.pop(provider_id, None)
        if old is not None:
            await old.aclose()

    async def aclose(self) -> None:
        adapters, self._adapters = list(self._adapters.values()), {}
        for a in adapters:
            await a.aclose()
