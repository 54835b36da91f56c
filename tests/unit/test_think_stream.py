"""strip_think on a stream: any chunking of a text gives strip_think of the whole."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.routing.output import ThinkStripper, strip_think

# pieces that make tags, split tags, tags formed only after a block is removed
# ("<thi" + block + "nk>"), mixed case, Unicode that re.IGNORECASE folds ("K", "İ")
PIECES = st.sampled_from(["<think>", "</think>", "<THINK>", "</Think>", "<thin\u212a>",
                          "\u0130", "a", "b", " ", "\n", "\t", "<", ">", "/", "think",
                          "<thi", "nk>", "</", "x y"])
TEXTS = st.one_of(st.lists(PIECES, max_size=24).map("".join), st.text(max_size=40))


def stream_strip(text: str, cuts: list[int]) -> str:
    stripper, out, prev = ThinkStripper(), [], 0
    for cut in [*sorted(cuts), len(text)]:
        out.append(stripper.feed(text[prev:cut]))
        prev = cut
    out.append(stripper.finish())
    return "".join(out)


@settings(max_examples=1500, deadline=None)
@given(TEXTS, st.data())
def test_any_chunking_strips_like_the_whole(text: str, data: st.DataObject) -> None:
    cuts = data.draw(st.lists(st.integers(0, len(text)), max_size=10))
    assert stream_strip(text, cuts) == strip_think(text)


def test_examples() -> None:
    text = "  <think>plan: step 1</think>\n\nThe answer is 4.  \n"
    assert stream_strip(text, list(range(len(text)))) == "The answer is 4."
    assert stream_strip("<think>never closed", [3, 9]) == ""
    assert stream_strip("ok <think>open", [5]) == "ok <think>open"
