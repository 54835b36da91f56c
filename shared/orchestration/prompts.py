"""Prompts of the multi-model orchestrations (critique, refine, vote judge)."""

from __future__ import annotations

import json
import re
from typing import Any

Msgs = list[dict[str, Any]]


def task_text(messages: Msgs) -> str:
    """The conversation as plain text, for prompts that quote the task."""
    lines = []
    for m in messages:
        content = m.get("content")
        if isinstance(content, list):
            content = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        lines.append(f"{m.get('role', 'user')}: {content or ''}")
    return "\n".join(lines)


def critique_messages(task: Msgs, plan: str) -> Msgs:
    return [
        {"role": "system", "content": "You are a rigorous reviewer. Find flaws, risks, missing "
                                      "steps and wrong assumptions. Be specific and concise."},
        {"role": "user", "content": f"Task:\n{task_text(task)}\n\nProposed answer:\n{plan}\n\n"
                                    "Critique the proposed answer."},
    ]


def refine_messages(task: Msgs, plan: str, critique: str) -> Msgs:
    return [
        *task,
        {"role": "assistant", "content": plan},
        {"role": "user", "content": f"A reviewer wrote:\n{critique}\n\nRewrite your answer, "
                                    "fixing every valid point. Reply with the full answer only."},
    ]


def self_refine_messages(task: Msgs, draft: str) -> Msgs:
    return [
        *task,
        {"role": "assistant", "content": draft},
        {"role": "user", "content": "Improve your answer: make it more correct, complete and "
                                    "clear. Reply with the full improved answer only."},
    ]


def judge_messages(task: Msgs, candidates: list[str]) -> Msgs:
    listing = "\n\n".join(f"[{i}]\n{c}" for i, c in enumerate(candidates))
    return [
        {"role": "system", "content": "You are an impartial judge. Pick the best answer. Reply "
                                      'with JSON only: {"selected": <index>, "rationale": "..."}'},
        {"role": "user", "content": f"Task:\n{task_text(task)}\n\nCandidate answers:\n{listing}"},
    ]


_INDEX = re.compile(r"\[?\b(\d+)\b\]?")


def parse_judgement(text: str, n: int) -> tuple[int, str]:
    """The judge's selected index and rationale; tolerant of prose around the JSON."""
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        try:
            data = json.loads(text[start:end + 1])
            idx = int(data.get("selected", -1))
            if 0 <= idx < n:
                return idx, str(data.get("rationale", "")).strip()
        except (ValueError, TypeError, AttributeError):
            pass
    match = _INDEX.search(text)
    if match and int(match.group(1)) < n:
        return int(match.group(1)), text.strip()
    return 0, "judge gave no usable selection; defaulted to the first answer: " + text.strip()
