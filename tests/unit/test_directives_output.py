"""In-band directives and output shaping (pure)."""

from __future__ import annotations

import pytest

from shared.contracts import Message, Policy
from shared.errors import BadRequest, DirectiveError, OutputValidationFailed
from shared.routing.directives import parse_directives
from shared.routing.output import check_schema, strip_think, validate_json_output
from shared.routing.policy import resolve_policy
from shared.routing.types import ResolvedPolicy


def user(text: str) -> Message:
    return Message(role="user", content=text)


def test_single_line_directive_is_parsed_and_stripped() -> None:
    msgs, o = parse_directives([user("@@tokenhub mode=cheap budget=0.01 latency=5000 "
                                     "min_weight=5\nWhat is 2+2?")])
    assert msgs[0].content == "What is 2+2?"
    assert o is not None and (o.mode, o.max_budget_usd, o.max_latency_ms, o.min_weight) == (
        "cheap", 0.01, 5000, 5)


def test_block_directive_with_schema_and_last_wins() -> None:
    text = ('@@tokenhub\nmode=planning\noutput_schema={"type": "object"}\n@@end\nhi\n'
            "@@tokenhub mode=high_confidence")
    msgs, o = parse_directives([Message(role="system", content="@@tokenhub mode=cheap"),
                                user(text)])
    assert msgs[0].content == "" and msgs[1].content == "hi"
    assert o is not None and o.mode == "high_confidence" and o.output_schema == {
        "type": "object"}


def test_no_directive_leaves_messages_untouched() -> None:
    original = [user("plain @@ text"), Message(role="assistant", content="ok")]
    msgs, o = parse_directives(original)
    assert msgs == original and o is None


def test_content_parts_are_stripped_too() -> None:
    msgs, o = parse_directives([Message(role="user", content=[
        {"type": "text", "text": "@@tokenhub budget=0.2\nhello"}])])
    assert msgs[0].content == [{"type": "text", "text": "hello"}]
    assert o is not None and o.max_budget_usd == 0.2


@pytest.mark.parametrize(("line", "key"), [
    ("@@tokenhub mode=fastest", "mode"), ("@@tokenhub budget=-1", "budget"),
    ("@@tokenhub budget=abc", "budget"), ("@@tokenhub latency=0", "latency"),
    ("@@tokenhub latency=1.5", "latency"), ("@@tokenhub min_weight=11", "min_weight"),
    ("@@tokenhub colour=red", "colour"), ("@@tokenhub\noutput_schema=[1]\n@@end",
                                           "output_schema"),
    ("@@tokenhub\nmode=cheap\n", "@@end")])
def test_invalid_directive_names_the_key(line: str, key: str) -> None:
    with pytest.raises(DirectiveError) as exc:
        parse_directives([user(line)])
    assert key in exc.value.message and exc.value.status_code == 400


def test_policy_layers() -> None:
    defaults = ResolvedPolicy(mode="normal", max_budget_usd=0.05, max_latency_ms=20000)
    _, o = parse_directives([user("@@tokenhub latency=100")])
    p = resolve_policy(defaults, Policy(mode="cheap", max_latency_ms=999), o)
    assert (p.mode, p.max_budget_usd, p.max_latency_ms) == ("cheap", 0.05, 100)


def test_strip_think() -> None:
    assert strip_think("<think>secret\nplan</think>\nAnswer") == "Answer"
    assert strip_think("A<think>x</think>B") == "AB"
    assert strip_think("<think>never closed") == ""


def test_json_output_validation() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    assert validate_json_output('{"n": 3}', schema) == {"n": 3}
    assert validate_json_output('```json\n{"n": 4}\n```', schema) == {"n": 4}
    with pytest.raises(OutputValidationFailed, match="not valid JSON"):
        validate_json_output("three", schema)
    with pytest.raises(OutputValidationFailed, match=r"at n: 'x' is not of type 'integer'"):
        validate_json_output('{"n": "x"}', schema)
    with pytest.raises(BadRequest, match="invalid output schema"):
        check_schema({"type": "nonsense"})
