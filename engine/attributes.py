"""Search attributes: how operators find runs in the Temporal UI (declared once, here).

The gateway sets them when it starts a run (:func:`initial`), the dev server registers
them (:func:`dev_server_args`), and the workflow refines them at the end
(``workflows/attributes.py``)."""

from __future__ import annotations

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
