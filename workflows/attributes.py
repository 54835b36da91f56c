"""The workflow's side of the search attributes: refine them when the run ends."""

from __future__ import annotations

from typing import Any

from temporalio.common import SearchAttributeUpdate

from engine.attributes import COST_USD, MODEL, PROVIDER, STATUS


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


def upsert_status(status: str) -> None:
    """The run's status while it runs (``waiting`` / ``running``: an async run)."""
    from temporalio import workflow

    if tagged():
        workflow.upsert_search_attributes([STATUS.value_set(status)])
