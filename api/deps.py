"""Annotated dependency aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.dispatch import Dispatcher
from api.state import AppState


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.tokenhub
    return state


def get_dispatcher(request: Request) -> Dispatcher:
    dispatcher: Dispatcher = request.app.state.dispatcher
    return dispatcher


def get_request_id(request: Request) -> str:
    return str(request.state.request_id)


StateDep = Annotated[AppState, Depends(get_state)]
DispatcherDep = Annotated[Dispatcher, Depends(get_dispatcher)]
RequestIdDep = Annotated[str, Depends(get_request_id)]
