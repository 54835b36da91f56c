"""Admin: the runtime settings every process applies — routing config and retention — the
prune, and the reward log. Changes are validated (400 naming the field), audited, stored in
the database with a catalog version bump, so every gateway process and worker applies them
without a restart (shared/catalog.py)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ValidationError
from starlette.responses import Response

from api.catalog import reload_catalog
from api.deps import StateDep
from api.responses import JSONResponse
from api.routes.admin_catalog import bad_request
from api.routes.admin_security import audited
from api.security import AdminDep
from api.state import AppState
from shared.routing.config import RoutingConfig
from shared.store import repo
from shared.store import runtime as store_runtime
from shared.store.retention import RetentionConfig, prune

router = APIRouter(prefix="/admin/v1", tags=["admin"])


def _validated(kind: type[RoutingConfig] | type[RetentionConfig],
               data: dict[str, Any]) -> BaseModel:
    try:
        return kind.model_validate(data)
    except ValidationError as err:
        raise bad_request(err) from None


async def _store(request: Request, state: AppState, key: str, value: BaseModel,
                 action: str) -> None:
    async def op() -> None:
        async with state.sessionmaker() as s, s.begin():
            await store_runtime.put(s, key=key, value=value.model_dump(mode="json"))

    await audited(request, action, key, op())
    await reload_catalog(state)


@router.get("/routing-config")
async def get_routing_config(state: StateDep, _: AdminDep) -> Response:
    assert state.routing is not None
    return JSONResponse(state.routing.model_dump(mode="json"))


@router.put("/routing-config")
async def put_routing_config(body: dict[str, Any], request: Request, state: StateDep,
                             _: AdminDep) -> Response:
    """Change the routing defaults (mode, max_budget_usd, max_latency_ms, min_weight) and
    per-mode score weights; keys left out keep their current value."""
    assert state.routing is not None
    config = _validated(RoutingConfig, state.routing.merged(body))
    await _store(request, state, store_runtime.ROUTING, config, "routing_config.update")
    return JSONResponse(config.model_dump(mode="json"))


@router.get("/retention")
async def get_retention(state: StateDep, _: AdminDep) -> Response:
    return JSONResponse(state.retention.model_dump(mode="json"))


@router.put("/retention")
async def put_retention(body: dict[str, Any], request: Request, state: StateDep,
                        _: AdminDep) -> Response:
    """Per table (``request_log``, ``rewards``, ``audit``): ``{"days": …, "rows": …}``
    (null: no limit of that kind); a table left out keeps its setting."""
    config = _validated(RetentionConfig, state.retention.merged(body))
    await _store(request, state, store_runtime.RETENTION, config, "retention.update")
    return JSONResponse(config.model_dump(mode="json"))


@router.post("/prune")
async def prune_now(request: Request, state: StateDep, _: AdminDep) -> Response:
    """One prune pass now, in the same small batches as the background prune."""
    deleted = await audited(request, "retention.prune", None,
                            prune(state.sessionmaker, state.retention,
                                  on_deleted=state.metrics.count_pruned))
    return JSONResponse({"deleted": deleted})


@router.get("/rewards")
async def list_rewards(state: StateDep, _: AdminDep, limit: int = Query(50, ge=1, le=500),
                       cursor: int | None = Query(None, ge=1, le=2**63 - 1),
                       model: str | None = Query(None)) -> Response:
    async with state.sessionmaker() as s:
        page, nxt = await repo.list_rewards(s, limit=limit, before_id=cursor, model=model)
    return JSONResponse({"data": page, "next_cursor": nxt})
