"""Search attributes: how operators find runs in the Temporal UI (declared once, here).

The gateway sets them when it starts a run (:func:`initial`), the dev server registers
them (:func:`dev_server_args`), and the workflow refines them at the end
(``workflows/attributes.py``)."""

from __future__ import annotations

from typing import Any

from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
)

MODE = SearchAttributeKey.for_keyword("TokenHubMode")
MODEL = SearchAttributeKey.for_keyword("TokenHubModel")
PROVIDER = SearchAttributeKey.for_keyword("TokenHubProvider")
API_KEY_ID = SearchAttributeKey.for_keyword("TokenHubApiKeyId")
STATUS = SearchAttributeKey.for_keyword("TokenHubStatus")
COST_USD = SearchAttributeKey.for_float("TokenHubCostUsd")
KIND = SearchAttributeKey.for_keyword("TokenHubKind")
# a batch's workflow and each of its items: the batch id; an item: its custom_id too
BATCH_ID = SearchAttributeKey.for_keyword("TokenHubBatchId")
CUSTOM_ID = SearchAttributeKey.for_keyword("TokenHubCustomId")
CUSTOM_IDS = SearchAttributeKey.for_keyword_list("TokenHubCustomIds")  # a chunk's items

ALL_KEYS = (MODE, MODEL, PROVIDER, API_KEY_ID, STATUS, COST_USD, KIND, BATCH_ID, CUSTOM_ID,
            CUSTOM_IDS)


def dev_server_args() -> list[str]:
    """``--search-attribute`` flags registering every key on a dev server."""
    kinds = {"KEYWORD": "Keyword", "DOUBLE": "Double", "KEYWORD_LIST": "KeywordList"}
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


# Memo fields a run's static details may show: counts, ids and names, never message text
# (the fingerprint is a hash of the body: it stays in the memo only).
DETAIL_FIELDS = ("candidates", "messages", "iterations", "voters", "size_bucket",
                 "include_usage", "batch_id")
SUMMARY_LIMIT = 200  # the UI shows one line


def describe(attrs: TypedSearchAttributes, memo: dict[str, Any]) -> tuple[str, str]:
    """The run's static summary (one line for the UI's list and header) and details
    (markdown), from what its search attributes and memo already say: kind, mode, first
    model, API key id. Built from those only, so they can never carry message text."""
    kind, mode, model = attrs.get(KIND), attrs.get(MODE), attrs.get(MODEL)
    key_id = attrs.get(API_KEY_ID)
    parts = [p for p in (kind, mode, model) if p]
    if key_id:
        parts.append(f"key {key_id}")
    summary = " · ".join(parts)[:SUMMARY_LIMIT]
    lines = [f"**kind** {kind or '-'} · **mode** {mode or '-'}"]
    if model:
        provider = attrs.get(PROVIDER)
        lines.append(f"**first model** {model}" + (f" ({provider})" if provider else ""))
    if key_id:
        lines.append(f"**API key** {key_id}")
    for name in DETAIL_FIELDS:
        value = memo.get(name)
        if value is None:
            continue
        shown = ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)
        lines.append(f"**{name.replace('_', ' ')}** {shown}")
    return summary, "  \n".join(lines)
