"""Request context for the public routes, and the lean hot routes.

The public routes take one dependency each (``ChatCtx``, ``PlanCtx``…): FastAPI's
per-dependency overhead is measurable on the hot path (see bench/), so the request
context is assembled in a single async function.

The two hot routes (``POST /v1/chat``, ``POST /v1/chat/completions``) skip FastAPI's
request handling altogether (``lean_post``): plain Starlette routes that build the same
context and parse their body with pydantic-core in one pass. Measured with 1 gateway
process at c=16: ~700 → ~590 µs of CPU per request. Errors go through the same app-level
handlers; the OpenAPI document still describes them (``document_lean_routes``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from api.gateway import Gateway
from api.security import authorize
from api.service import Caller, RequestService
from api.state import AppState
from shared.errors import BadRequest
from shared.limits import check_json_items
from shared.security.apikeys import Principal
from shared.store.idempotency import fingerprint


def gateway_of(request: Request) -> Gateway:
    gw: Gateway = request.app.state.tokenhub
    return gw


async def get_state(request: Request) -> AppState:
    return gateway_of(request).state


StateDep = Annotated[AppState, Depends(get_state)]


@dataclass(frozen=True)
class Ctx:
    """What a public route needs: the state, the request service and the caller."""

    state: AppState
    service: RequestService
    request_id: str
    principal: Principal | None
    route: str = ""
    client_request_id: bool = False  # the client chose the id (X-Request-ID)

    def caller(self, request_body: str | None = None, *,
               body: BaseModel | None = None) -> Caller:
        """The caller; with ``body`` and a client-chosen request id, the body's fingerprint
        (route + API key id + canonical body) for idempotent retries."""
        fp = None
        if body is not None and self.client_request_id:
            fp = fingerprint(route=self.route, api_key_id=self.principal.key_id
                             if self.principal else None, body=body)
        return Caller(request_id=self.request_id, principal=self.principal,
                      request_body=request_body, fingerprint=fp)


async def context(request: Request, scope: str) -> Ctx:
    """Authorize the caller for ``scope`` and assemble the route's context."""
    principal = await authorize(request, scope)
    gw = gateway_of(request)
    return Ctx(gw.state, gw.service, str(request.state.request_id), principal,
               route=request.scope["path"],  # request.url would parse a URL object
               client_request_id=bool(getattr(request.state, "request_id_from_client", False)))


def _context(scope: str) -> object:
    async def dep(request: Request) -> Ctx:
        return await context(request, scope)
    return Depends(dep)


ChatCtx = Annotated[Ctx, _context("chat")]
PlanCtx = Annotated[Ctx, _context("plan")]
ModelsCtx = Annotated[Ctx, _context("models")]
FeedbackCtx = Annotated[Ctx, _context("feedback")]


M = TypeVar("M", bound=BaseModel)
Handler = Callable[[Request, Ctx], Awaitable[Response]]


async def json_body(request: Request, model: type[M]) -> M:
    """The request body parsed and validated in one pass (pydantic-core's JSON parser).

    The hot routes read their body with this instead of a FastAPI body parameter, which
    decodes the JSON into Python objects first and validates them after (measured in
    bench/: ~5 % of the gateway's CPU per request). Errors are the same
    ``RequestValidationError`` (400 invalid_request, locations under ``body``).
    A body with more JSON items than ``TOKENHUB_MAX_JSON_ITEMS`` is refused before it is
    parsed (``shared/limits.py``: parsing it could hold the event loop for long).
    """
    try:
        raw = await request.body()
    except ClientDisconnect:  # as FastAPI: a 400 (nobody reads it), not a 500 in the logs
        raise BadRequest("the client disconnected while sending the body") from None
    check_json_items(raw, gateway_of(request).state.settings.max_json_items)
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        for e in errors:
            e["loc"] = ("body", *e.get("loc", ()))
        raise RequestValidationError(errors, body=raw) from None


@dataclass(frozen=True)
class LeanRoute:
    path: str
    scope: str
    body: type[BaseModel]
    response: type[BaseModel]
    summary: str
    tag: str
    headers: tuple[tuple[str, str, dict[str, Any]], ...] = ()  # (name, description, schema)


_LEAN: list[LeanRoute] = []


def lean_post(router: APIRouter, path: str, *, scope: str, body: type[BaseModel],
              response: type[BaseModel], summary: str, tag: str,
              headers: tuple[tuple[str, str, dict[str, Any]], ...] = ()
              ) -> Callable[[Handler], Handler]:
    """Register ``handler(request, ctx)`` as a plain Starlette ``POST`` route on ``router``
    (FastAPI's ``include_router`` carries it over), documented in the OpenAPI document
    with its body and its (non-streaming) answer, ``response``."""
    lean = LeanRoute(path, scope, body, response, summary, tag, headers)

    def register(handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            request.scope.setdefault("route", lean)  # metrics label by route path
            return await handler(request, await context(request, scope))

        router.add_route(path, endpoint, methods=["POST"], include_in_schema=False,
                         name=handler.__name__)
        _LEAN.append(lean)
        return handler
    return register


_SSE_EVENT = {"type": "object", "description": "one server-sent event (data: a JSON chunk, "
               "or [DONE])", "properties": {"event": {"type": "string"},
                                            "data": {"type": "string"}}}


def _component(components: dict[str, Any], model: type[BaseModel], mode: str) -> str:
    js = model.model_json_schema(ref_template="#/components/schemas/{model}",
                                 mode=mode)  # type: ignore[arg-type]
    for name, sub in js.pop("$defs", {}).items():
        components.setdefault(name, sub)
    components.setdefault(model.__name__, js)
    return f"#/components/schemas/{model.__name__}"


def document_lean_routes(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the lean routes, the schemas of their bodies and answers, to an OpenAPI
    document (their error responses are added with every route's: api/openapi.py)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    paths = schema.setdefault("paths", {})
    for route in _LEAN:
        body_ref = _component(components, route.body, "validation")
        answer_ref = _component(components, route.response, "serialization")
        op: dict[str, Any] = {
            "tags": [route.tag], "summary": route.summary,
            "operationId": f"{route.tag}_{route.path.strip('/').replace('/', '_')}_post",
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": body_ref}}}},
            "responses": {"200": {
                "description": "The answer (JSON), or server-sent events when streaming",
                "content": {"application/json": {"schema": {"$ref": answer_ref}},
                            "text/event-stream": {"schema": _SSE_EVENT}}}}}
        paths.setdefault(route.path, {})["post"] = op
        if route.headers:
            op["parameters"] = [{"name": name, "in": "header", "required": False,
                                 "description": text, "schema": js}
                                for name, text, js in route.headers]
    return schema
