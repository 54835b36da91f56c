"""Admin: discover a provider's models and add a selection of them (audited).

``GET /admin/v1/providers/{id}/discover`` lists what the provider serves (OpenAI-compatible
and vLLM ``/v1/models``, Anthropic's models list) with the record each would get
(shared/discovery.py defaults) and whether it is in the catalog already.
``POST`` with ``{"models": ["name", {"name": ..., "id"?: ..., "weight"?: ...,
"input_per_1k"?: ..., "output_per_1k"?: ..., "max_context_tokens"?: ..., "kind"?: ...}]}``
adds them as admin models (persisted; catalog version bumped), all or none. A provider
that cannot be reached or answers something that is not a model list is a 502 naming
its status; nothing is added.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.responses import Response

from api.catalog import reload_catalog
from api.deps import StateDep
from api.responses import JSONResponse
from api.routes.admin_catalog import bad_request, validated_catalog
from api.routes.admin_security import audited
from api.security import AdminDep
from api.state import AppState
from shared.config import ModelConfig, ProviderConfig
from shared.discovery import model_config
from shared.errors import BadRequest, NotFound, ProviderError, UpstreamFailed
from shared.providers.base import DiscoveredModel
from shared.store import catalog as store_catalog

router = APIRouter(prefix="/admin/v1", tags=["admin"])


class Pick(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)  # the provider's model name (GET …/discover)
    id: str | None = None  # catalog id; default: the name made id-safe
    weight: float | None = Field(default=None, ge=0, le=10)
    max_context_tokens: int | None = Field(default=None, gt=0)
    input_per_1k: float | None = Field(default=None, ge=0)
    output_per_1k: float | None = Field(default=None, ge=0)
    kind: str | None = None


class DiscoverBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    models: list[str | Pick] = Field(min_length=1)


async def _discover(state: AppState, provider_id: str) -> tuple[ProviderConfig,
                                                                 list[DiscoveredModel]]:
    provider = state.catalog.provider(provider_id)
    if provider is None:
        raise NotFound(f"provider {provider_id!r} not found")
    try:
        adapter = await state.adapter(provider_id)
        return provider, await adapter.list_models()
    except NotFound:
        raise BadRequest(f"provider {provider_id!r} is disabled") from None
    except ProviderError as err:
        raise UpstreamFailed(
            f"model discovery of provider {provider_id!r} failed: {err.message}",
            details={"provider_status": err.status, "error_class": err.error_class}) from None


@router.get("/providers/{provider_id}/discover")
async def discover(provider_id: str, state: StateDep, _: AdminDep) -> Response:
    provider, found = await _discover(state, provider_id)
    known = {(m.provider, m.upstream) for m in state.catalog.models}
    data = []
    for f in found:
        record = model_config(provider, f, state.settings).model_dump(mode="json")
        data.append({"name": f.id, "max_context_tokens": f.max_context_tokens,
                     "owned_by": f.owned_by, "in_catalog": (provider.id, f.id) in known,
                     "record": record})
    return JSONResponse({"provider": provider.id, "data": data})


def _record(provider: ProviderConfig, found: dict[str, DiscoveredModel], pick: str | Pick,
            state: AppState) -> ModelConfig:
    p = Pick(name=pick) if isinstance(pick, str) else pick
    if p.name not in found:
        raise BadRequest(f"models: provider {provider.id!r} does not list {p.name!r}")
    base = model_config(provider, found[p.name], state.settings, model_id=p.id,
                        weight=p.weight).model_dump()
    base.update(p.model_dump(exclude={"name", "id", "weight"}, exclude_none=True))
    try:
        return ModelConfig.model_validate(base)
    except ValidationError as err:
        raise bad_request(err) from None


@router.post("/providers/{provider_id}/discover", status_code=201)
async def add_discovered(provider_id: str, body: DiscoverBody, request: Request,
                         state: StateDep, _: AdminDep) -> Response:
    provider, listed = await _discover(state, provider_id)
    found = {f.id: f for f in listed}
    models = [_record(provider, found, pick, state) for pick in body.models]
    ids = [m.id for m in models]
    if len(set(ids)) != len(ids):
        raise BadRequest(f"models: the same id twice in {ids}")
    others = [m.model_dump() for m in state.catalog.models if m.id not in set(ids)]
    validated_catalog(state.catalog, models=[*others, *(m.model_dump() for m in models)])

    async def op() -> None:  # all in one transaction: all or none
        async with state.sessionmaker() as s, s.begin():
            for m in models:
                await store_catalog.upsert_model(s, model=m)

    await audited(request, "provider.discover", provider_id, op())
    await reload_catalog(state)
    return JSONResponse({"provider": provider_id,
                         "added": [m.model_dump(mode="json") for m in models]},
                        status_code=201)
