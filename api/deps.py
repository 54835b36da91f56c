"""Annotated dependency aliases.

The public routes take one dependency each (``ChatCtx``, ``PlanCtx``…): FastAPI's
per-dependency overhead is measurable on the hot path (see bench/), so the request
context is assembled in a single async function.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

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


M = TypeVar("M", bound=BaseModel)


async def json_body(request: Request, model: type[M]) -> M:
    """The request body parsed and validated in one pass (pydantic-core's JSON parser).

    The hot routes read their body with this instead of a FastAPI body parameter, which
    decodes the JSON into Python objects first and validates them after (measured in
    bench/: ~5 % of the gateway's CPU per request). Errors are the same
    ``RequestValidationError`` (400 invalid_request, locations under ``body``).
    """
    raw = await request.body()
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        for e in errors:
            e["loc"] = ("body", *e.get("loc", ()))
        raise RequestValidationError(errors, body=raw) from None


_DOCUMENTED: list[type[BaseModel]] = []


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` documenting a body read with ``json_body``; the schema itself is
    added to the components by ``add_body_schemas``."""
    _DOCUMENTED.append(model)
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}}


def add_body_schemas(schema: dict[str, Any]) -> dict[str, Any]:
    """Put the schemas of the bodies read with ``json_body`` into an OpenAPI document."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in _DOCUMENTED:
        js = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in js.pop("$defs", {}).items():
            components.setdefault(name, sub)
        components.setdefault(model.__name__, js)
    return schema
