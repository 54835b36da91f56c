"""Admin: providers (keys go to the vault), models, routing simulation. Audited."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import SecretStr, ValidationError
from starlette.responses import Response

from api.catalog import reload_catalog
from api.deps import StateDep
from api.responses import JSONResponse
from api.routes.admin_security import audited
from api.schemas import (
    Deleted,
    ModelPage,
    ModelPatch,
    ProviderIn,
    ProviderList,
    ProviderOut,
    SimulatedRoute,
)
from api.security import AdminDep, security_of
from shared.config import CONFLICT, Catalog, ModelConfig, ProviderConfig
from shared.contracts import ChatBody
from shared.errors import BadRequest, Conflict, NotFound, VaultLocked
from shared.routing.simulate import simulate
from shared.store import catalog as store_catalog

router = APIRouter(prefix="/admin/v1", tags=["admin"])


def _public(p: ProviderConfig, state: Any) -> dict[str, Any]:
    data = p.model_dump(mode="json", exclude={"api_key"})
    data["has_key"] = bool(p.uses_vault and p.id in state.vault_keys) or bool(p.resolve_key())
    return data


def bad_request(err: ValidationError) -> BadRequest | Conflict:
    """400 naming the field; 409 when the change clashes with an id already in use."""
    errors = err.errors()
    text = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" if e["loc"] else e["msg"]
                     for e in errors)
    return Conflict(text) if any(e["type"] == CONFLICT for e in errors) else BadRequest(text)


def validated_catalog(catalog: Catalog, **changes: Any) -> None:
    """The catalog with ``changes`` must pass Catalog validation (shared/config.py, the
    same checks as the file/env path): 400, or 409 when an id clashes with one in use."""
    try:
        Catalog.model_validate({**catalog.model_dump(), **changes})
    except ValidationError as err:
        raise bad_request(err) from None


async def _save_provider(request: Request, state: Any, data: dict[str, Any],
                         key: SecretStr | None, action: str) -> ProviderConfig:
    sec = security_of(request)
    if key is not None:
        if not sec.vault.is_unlocked:
            raise VaultLocked("unlock the vault before storing a provider key")
        data["uses_vault"] = True
    try:
        provider = ProviderConfig.model_validate(data)
    except ValidationError as err:
        raise bad_request(err) from None

    async def op() -> None:  # key, provider and catalog version in one transaction
        async with state.sessionmaker() as s, s.begin():
            if key is not None:
                await sec.vault.put_secret(provider.id, key.get_secret_value(), session=s)
            await store_catalog.upsert_provider(s, provider=provider)

    await audited(request, action, provider.id, op())
    if key is not None:
        sec.secrets.add(key.get_secret_value())
    await reload_catalog(state)
    return provider


@router.get("/providers", response_model=ProviderList)
async def list_providers(state: StateDep, _: AdminDep) -> Response:
    return JSONResponse({"data": [_public(p, state) for p in state.catalog.providers]})


@router.post("/providers", status_code=201, response_model=ProviderOut)
async def create_provider(body: ProviderIn, request: Request, state: StateDep,
                          _: AdminDep) -> Response:
    data = body.model_dump(exclude_unset=True, exclude={"api_key"})
    p = await _save_provider(request, state, data, body.api_key, "provider.create")
    return JSONResponse(_public(state.catalog.provider(p.id) or p, state), status_code=201)


@router.get("/providers/{provider_id:path}", response_model=ProviderOut)
async def get_provider(provider_id: str, state: StateDep, _: AdminDep) -> Response:
    p = state.catalog.provider(provider_id)
    if p is None:
        raise NotFound(f"provider {provider_id!r} not found")
    return JSONResponse(_public(p, state))


@router.patch("/providers/{provider_id:path}", response_model=ProviderOut)
async def patch_provider(provider_id: str, body: ProviderIn, request: Request,
                         state: StateDep, _: AdminDep) -> Response:
    current = state.catalog.provider(provider_id)
    if current is None:
        raise NotFound(f"provider {provider_id!r} not found")
    data = {**current.model_dump(exclude={"api_key"}),
            **body.model_dump(exclude_unset=True, exclude={"api_key"}), "id": provider_id}
    p = await _save_provider(request, state, data, body.api_key, "provider.update")
    return JSONResponse(_public(state.catalog.provider(p.id) or p, state))


@router.delete("/providers/{provider_id:path}", response_model=Deleted)
async def delete_provider(provider_id: str, request: Request, state: StateDep,
                          _: AdminDep) -> Response:
    if state.catalog.provider(provider_id) is None:
        raise NotFound(f"provider {provider_id!r} not found")
    if any(m.provider == provider_id for m in state.catalog.models):
        raise BadRequest(f"provider {provider_id!r} still has models: delete them first")
    sec = security_of(request)

    async def op() -> None:
        async with state.sessionmaker() as s, s.begin():
            await store_catalog.delete_provider(s, provider_id=provider_id)
            await sec.vault.delete_secret(provider_id, session=s)

    await audited(request, "provider.delete", provider_id, op())
    await reload_catalog(state)
    return JSONResponse({"deleted": provider_id})


@router.get("/models", response_model=ModelPage)
async def list_models(state: StateDep, _: AdminDep) -> Response:
    return JSONResponse({"data": [m.model_dump(mode="json") for m in state.catalog.models]})


async def _save_model(request: Request, state: Any, data: dict[str, Any],
                      action: str) -> ModelConfig:
    try:
        model = ModelConfig.model_validate(data)
    except ValidationError as err:
        raise bad_request(err) from None
    others = [m for m in state.catalog.models if m.id != model.id]
    validated_catalog(state.catalog, models=[*(m.model_dump() for m in others), model.model_dump()])

    async def op() -> None:
        async with state.sessionmaker() as s, s.begin():
            await store_catalog.upsert_model(s, model=model)

    await audited(request, action, model.id, op())
    await reload_catalog(state)
    return model


@router.post("/models", status_code=201, response_model=ModelConfig)
async def create_model(body: ModelConfig, request: Request, state: StateDep,
                       _: AdminDep) -> Response:
    model = await _save_model(request, state, body.model_dump(), "model.create")
    return JSONResponse(model.model_dump(mode="json"), status_code=201)


@router.patch("/models/{model_id:path}", response_model=ModelConfig)
async def patch_model(model_id: str, body: ModelPatch, request: Request, state: StateDep,
                      _: AdminDep) -> Response:
    current = state.catalog.model(model_id)
    if current is None:
        raise NotFound(f"model {model_id!r} not found")
    changes = body.model_dump(exclude_unset=True)
    model = await _save_model(request, state, {**current.model_dump(), **changes,
                                               "id": model_id}, "model.update")
    return JSONResponse(model.model_dump(mode="json"))


@router.delete("/models/{model_id:path}", response_model=Deleted)
async def delete_model(model_id: str, request: Request, state: StateDep,
                       _: AdminDep) -> Response:
    if state.catalog.model(model_id) is None:
        raise NotFound(f"model {model_id!r} not found")
    validated_catalog(state.catalog,  # e.g. an alias still naming it: refused, not a broken reload
               models=[m.model_dump() for m in state.catalog.models if m.id != model_id])

    async def op() -> None:
        async with state.sessionmaker() as s, s.begin():
            await store_catalog.delete_model(s, model_id=model_id)

    await audited(request, "model.delete", model_id, op())
    await reload_catalog(state)
    return JSONResponse({"deleted": model_id})


@router.post("/routing/simulate", response_model=SimulatedRoute)
async def routing_simulate(body: ChatBody, state: StateDep, _: AdminDep) -> Response:
    return JSONResponse(simulate(body, defaults=state.default_policy,
                                 ctx=state.routing_context(), rng=state.rng))
