"""Annotated dependency aliases.

The public routes take one dependency each (``ChatCtx``, ``PlanCtx``…): FastAPI's
per-dependency overhead is measurable on the hot path (see bench/), so the request
context is assembled in a single async function.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from api.dispatch import Dispatcher
from api.security import authorize
from api.state import AppState
from shared.security.apikeys import Principal


async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.tokenhub
    return state


StateDep = Annotated[AppState, Depends(get_state)]


@dataclass(frozen=True)
class Ctx:
    """What a public route needs: state, dispatcher, request id and the caller."""

    state: AppState
    dispatcher: Dispatcher
    request_id: str
    principal: Principal | None

    @property
    def api_key_id(self) -> str | None:
        return self.principal.key_id if self.principal else None


def _context(scope: str) -> object:
    async def dep(request: Request) -> Ctx:
        principal = await authorize(request, scope)
        app_state = request.app.state
        return Ctx(app_state.tokenhub, app_state.dispatcher, str(request.state.request_id),
                   principal)
    return Depends(dep)


ChatCtx = Annotated[Ctx, _context("chat")]
PlanCtx = Annotated[Ctx, _context("plan")]
ModelsCtx = Annotated[Ctx, _context("models")]
