"""Admin: empty the exact response cache (all of it, or one model's answers). Audited."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from api.deps import gateway_of
from api.responses import JSONResponse
from api.routes.admin_security import audited
from api.security import AdminDep

router = APIRouter(prefix="/admin/v1", tags=["admin"])


@router.delete("/cache", summary="Delete cached answers (all, or those of ?model=)")
async def clear_cache(request: Request, _: AdminDep,
                      model: str | None = Query(None, min_length=1, max_length=128)
                      ) -> Response:
    cache = gateway_of(request).service.cache
    deleted = 0
    if cache is not None:
        deleted = await audited(request, "cache.clear", model, cache.store.clear(model))
    return JSONResponse({"deleted": deleted, "model": model})
