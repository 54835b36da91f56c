"""Search attributes and memo: how operators find runs in the Temporal UI."""

from __future__ import annotations

from typing import Any

from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    SearchAttributeUpdate,
    TypedSearchAttributes,
)

MODE = SearchAttributeKey.for_keyword("TokenHubMode")
MODEL = SearchAttributeKey.for_keyword("TokenHubModel")
PROVIDER = SearchAttributeKey.for_keyword("TokenHubProvider")
API_KEY_ID = SearchAttributeKey.for_keyword("TokenHubApiKeyId")
STATUS = SearchAttributeKey.for_keyword("TokenHubStatus")
COST_USD = SearchAttributeKey.for_float("TokenHubCostUsd")
KIND = SearchAttributeKey.for_keyword("TokenHubKind")

ALL_KEYS = (MODE, MODEL, PROVIDER, API_KEY_ID, STATUS, COST_USD, KIND)


def dev_server_args() -> list[str]:
    """``--search-attribute`` flags registering every key on a dev server."""
    kinds = {"KEYWORD": "Keyword", "DOUBLE": "Double"}
    args: list[str] = []
    for key in ALL_KEYS:
        args += ["--search-attribute", f"{key.name}={kinds[key.indexed_value_type.name]}"]
    return args


def initial(*, kind: str, mode: str, model: str | None, provider: str | None,
            api_key_id: str | None) -> TypedSearchAttributes:
    """Attributes set when the gateway starts a run (refined by the workflow at the end)."""
    pairs: list[SearchAttributePair[str]] = [
        SearchAttributePair(KIND, kind), SearchAttributePair(MODE, mode),
        SearchAttributePair(STATUS, "running"),
    ]
    if model:
        pairs.append(SearchAttributePair(MODEL, model))
    if provider:
        pairs.append(SearchAttributePair(PROVIDER, provider))
    if api_key_id:
        pairs.append(SearchAttributePair(API_KEY_ID, api_key_id))
    return TypedSearchAttributes(pairs)


def tagged() -> bool:
    """Were this run's attributes set at start? Only then may the workflow upsert them:
    upserting an attribute the namespace does not know fails every workflow task."""
    from temporalio import workflow

    return workflow.info().typed_search_attributes.get(STATUS) is not None


def upsert_outcome(*, status: str, model: str | None = None, provider: str | None = None,
                   cost_usd: float | None = None) -> None:
    from temporalio import workflow

    if not tagged():
        return
    updates: list[SearchAttributeUpdate[Any]] = [STATUS.value_set(status)]
    if model:
        updates.append(MODEL.value_set(model))
    if provider:
        updates.append(PROVIDER.value_set(provider))
    if cost_usd is not None:
        updates.append(COST_USD.value_set(cost_usd))
    workflow.upsert_search_attributes(updates)
