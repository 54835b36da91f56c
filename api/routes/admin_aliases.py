"""Admin: aliases and A/B splits (``/admin/v1/aliases``). Audited; every change bumps the
catalog version, so every gateway process and worker applies it at once.

Validation is the catalog's own (shared/config.py, as for the file and the environment):
targets must be known models with weights >= 0 summing to more than 0 (400); an alias
named like a model is a 409."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import Response

from api.catalog import reload_catalog
from api.deps import StateDep
from api.responses import JSONResponse
from api.routes.admin_catalog import bad_request, validated_catalog
from api.routes.admin_security import audited
from api.security import AdminDep
from shared.config import AliasConfig
from shared.errors import BadRequest, Conflict, NotFound
from shared.store import catalog as store_catalog

router = APIRouter(prefix="/admin/v1", tags=["admin"])


def _public(alias_id: str, targets: dict[str, float], state: Any) -> dict[str, Any]:
    explicit = next((a for a in state.catalog.aliases if a.id == alias_id), None)
    return {"id": alias_id, "targets": targets,
            "source": "alias" if explicit else "model.aliases",
            "cache_ttl_s": explicit.cache_ttl_s if explicit else None}


async def _save(request: Request, state: Any, data: dict[str, Any], action: str) -> AliasConfig:
    try:
        alias = AliasConfig.model_validate(data)
    except ValidationError as err:
        raise bad_request(err) from None
    others = [a.model_dump() for a in state.catalog.aliases if a.id != alias.id]
    validated_catalog(state.catalog, aliases=[*others, alias.model_dump()])

    async def op() -> None:
        async with state.sessionmaker() as s, s.begin():
            await store_catalog.upsert_alias(s, alias=alias)

    await audited(request, action, alias.id, op())
    await reload_catalog(state)
    return alias


@router.get("/aliases")
async def list_aliases(state: StateDep, _: AdminDep) -> Response:
    targets = state.catalog.alias_targets()
    return JSONResponse({"data": [_public(a, t, state) for a, t in sorted(targets.items())]})


@router.get("/aliases/{alias_id:path}")
async def get_alias(alias_id: str, state: StateDep, _: AdminDep) -> Response:
    targets = state.catalog.alias_targets().get(alias_id)
    if targets is None:
        raise NotFound(f"alias {alias_id!r} not found")
    return JSONResponse(_public(alias_id, targets, state))


@router.post("/aliases", status_code=201)
async def create_alias(body: dict[str, Any], request: Request, state: StateDep,
                       _: AdminDep) -> Response:
    alias_id = body.get("id")
    if isinstance(alias_id, str) and alias_id in state.catalog.alias_targets():
        raise Conflict(f"alias {alias_id!r} exists: PUT /admin/v1/aliases/{alias_id}")
    alias = await _save(request, state, body, "alias.create")
    return JSONResponse(_public(alias.id, alias.targets, state), status_code=201)


@router.put("/aliases/{alias_id:path}")
async def put_alias(alias_id: str, body: dict[str, Any], request: Request, state: StateDep,
                    _: AdminDep) -> Response:
    """Create or replace the alias (its targets and weights)."""
    alias = await _save(request, state, {**body, "id": alias_id}, "alias.update")
    return JSONResponse(_public(alias.id, alias.targets, state))


@router.delete("/aliases/{alias_id:path}")
async def delete_alias(alias_id: str, request: Request, state: StateDep,
                       _: AdminDep) -> Response:
    base = state.base_catalog
    if base is not None and any(a.id == alias_id for a in base.aliases):
        raise BadRequest(f"alias {alias_id!r} is defined in TOKENHUB_CONFIG: edit the file")
    if not any(a.id == alias_id for a in state.catalog.aliases):
        if alias_id in state.catalog.alias_targets():
            raise BadRequest(f"alias {alias_id!r} is declared on a model (its `aliases`): "
                             "PATCH the model")
        raise NotFound(f"alias {alias_id!r} not found")

    async def op() -> None:
        async with state.sessionmaker() as s, s.begin():
            await store_catalog.delete_alias(s, alias_id=alias_id)

    await audited(request, "alias.delete", alias_id, op())
    await reload_catalog(state)
    return JSONResponse({"deleted": alias_id})
