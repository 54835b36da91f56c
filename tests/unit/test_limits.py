"""The request limits' counting (shared/limits.py, shared/routing/directives.py)."""

from __future__ import annotations

import orjson
import pytest

from shared.contracts import Message
from shared.errors import BadRequest, DirectiveError
from shared.limits import check_json_items, check_messages, json_items
from shared.routing.directives import MAX_LINE, parse_directives


def test_json_items_counts_structure_outside_strings_only() -> None:
    body = orjson.dumps({"a": [1, 2, {"b": "x,{[\"\\"}], "c": "\\\"{"})
    # strings: a b x.. c \"{ (5); objects 2; arrays 1; commas outside strings 3
    assert json_items(body, 12) == 5 + 2 + 1 + 3
    assert json_items(body, 1) > 1  # certain early: more strings than the limit
    assert json_items(body, len(body)) == 0  # too short to exceed: not scanned
    with pytest.raises(BadRequest, match="TOKENHUB_MAX_JSON_ITEMS"):
        check_json_items(orjson.dumps(list(range(100))), 50)
    check_json_items(orjson.dumps(["{[,]}" * 1000]), 50)  # one string


def test_message_count() -> None:
    msgs = [Message(role="user", content="hi")] * 3
    check_messages(msgs, 3)
    with pytest.raises(BadRequest, match=r"messages: at most 2 .*TOKENHUB_MAX_MESSAGES"):
        check_messages(msgs, 2)


def _msg(text: str) -> list[Message]:
    return [Message(role="user", content=text)]


def test_directive_lines_are_bounded_per_request() -> None:
    text = "\n".join(["@@tokenhub mode=cheap"] * 4) + "\nhello"
    clean, over = parse_directives(_msg(text), max_lines=4)
    assert clean[0].content == "hello" and over is not None and over.mode == "cheap"
    with pytest.raises(DirectiveError, match="TOKENHUB_MAX_DIRECTIVE_LINES"):
        parse_directives(_msg(text) * 2, max_lines=4)  # counted over all messages
    block = "@@tokenhub\nmode=cheap\n\n\n@@end\nhi"  # every line of a block counts
    assert parse_directives(_msg(block), max_lines=5)[0][0].content == "hi"
    with pytest.raises(DirectiveError, match="directive lines"):
        parse_directives(_msg(block), max_lines=4)
    with pytest.raises(DirectiveError, match="longer than"):
        parse_directives(_msg("@@tokenhub mode=cheap" + " " * MAX_LINE + "\nhi"))


def test_directives_keep_the_text_around_them() -> None:
    text = "a\r\n  @@tokenhub latency=5\r\nb @@tokenhub mode=cheap\n@@tokenhubs\u2028c\n"
    clean, over = parse_directives(_msg(text))
    assert clean[0].content == "a\r\nb @@tokenhub mode=cheap\n@@tokenhubs\u2028c"
    assert over is not None and over.max_latency_ms == 5 and over.mode is None
