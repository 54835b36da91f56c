"""Ask a provider to continue an answer another call started (durable streams' failover).

Which providers honour a real prefix:

- **Anthropic** honours a trailing ``assistant`` message as a *prefill*: the model goes on
  from the last character of that text. The API refuses a prefill ending in whitespace,
  so trailing whitespace is dropped from it (the continuation usually restores it).
- **vLLM** honours it too when asked: a trailing ``assistant`` message with
  ``continue_final_message: true`` and ``add_generation_prompt: false`` (its chat-template
  extension to the OpenAI API) continues that message instead of starting a new turn.
- **OpenAI and other OpenAI-compatible servers** generally do not: a trailing assistant
  message is taken as a finished turn. They get the partial answer as an assistant turn
  followed by a user instruction to continue it exactly where it stopped: best effort,
  the seam may repeat or drop a few words.
"""

from __future__ import annotations

from typing import Any

from shared.providers.base import ProviderCall

CONTINUE_INSTRUCTION = (
    "Your previous answer was cut off. Continue it exactly where it stopped, without "
    "repeating any of it and without any preamble.")


def honours_prefix(provider_type: str) -> bool:
    return provider_type in ("anthropic", "vllm")


def continuation(call: ProviderCall, provider_type: str, prefix: str) -> ProviderCall:
    """``call`` asking the model to continue ``prefix`` (``call`` itself when it is empty)."""
    if not prefix:
        return call
    messages: list[dict[str, Any]] = list(call.messages)
    params = dict(call.parameters)
    if provider_type == "anthropic":
        messages.append({"role": "assistant", "content": prefix.rstrip()})
    elif provider_type == "vllm":
        messages.append({"role": "assistant", "content": prefix})
        params.update(continue_final_message=True, add_generation_prompt=False)
    else:
        messages += [{"role": "assistant", "content": prefix},
                     {"role": "user", "content": CONTINUE_INSTRUCTION}]
    return call.model_copy(update={"messages": messages, "parameters": params})


def strip_restated(prefix: str, text: str) -> str:
    """What a continuation adds to ``prefix``: Anthropic's prefill lost ``prefix``'s trailing
    whitespace, so a continuation starting with the same whitespace is not doubled."""
    trailing = prefix[len(prefix.rstrip()):]
    if trailing and text.startswith(trailing):
        return text[len(trailing):]
    return text
