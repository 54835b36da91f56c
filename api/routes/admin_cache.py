"""Admin: empty the exact response cache (all of it, or one model's answers). Audited."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from api.catalog import reload_catalog
from api.deps import gateway_of
from api.responses import JSONResponse
from api.routes.admin_security import audited
from api.security import AdminDep
from shared.store import catalog as store_catalog

router = APIRouter(prefix="/admin/v1", tags=["admin"])


@router.delete("/cache", summary="Delete cached answers (all, or those of ?model=)")
async def clear_cache(request: Request, _: AdminDep,
                      model: str | None = Query(None, min_length=1, max_length=128)
                      ) -> Response:
    """Every gateway process forgets its memory of recent entries too: the clear bumps the
    catalog version, which each process polls (TOKENHUB_CATALOG_POLL_S)."""
    gw = gateway_of(request)
    cache, state = gw.service.cache, gw.state
    deleted = 0
    if cache is not None:
        async def op() -> int:
            n = await cache.store.clear(model)
            async with state.sessionmaker() as s, s.begin():
                await store_catalog.bump_version(s)
            return n

        deleted = await audited(request, "cache.clear", model, op())
        await reload_catalog(state)
    return JSONResponse({"deleted": deleted, "model": model})
