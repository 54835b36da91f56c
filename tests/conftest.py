"""Shared fixtures. Tests talk only to loopback."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Settings must never pick up a developer's .env or real provider keys in tests.
for _name in list(os.environ):
    if _name.startswith("TOKENHUB_") or _name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        del os.environ[_name]  # the usual key names register providers too

from tests.fake_provider import FakeProvider, start_in_thread  # noqa: E402


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeProvider]:
    fake, server = start_in_thread()
    yield fake
    fake.close()
    server.stop()


@pytest.fixture
def fake(fake_server: FakeProvider) -> FakeProvider:
    """The session's fake provider, reset for this test."""
    fake_server.reset()
    return fake_server


def catalog_yaml(fake_url: str) -> str:
    """Three providers (one per adapter type) on the fake server, and four models."""
    return f"""
providers:
  - {{id: fake-openai, type: openai, base_url: "{fake_url}", api_key_env: FAKE_OPENAI_KEY}}
  - {{id: fake-anthropic, type: anthropic, base_url: "{fake_url}",
      api_key_env: FAKE_ANTHROPIC_KEY}}
  - {{id: fake-vllm, type: vllm, endpoints: ["{fake_url}", "{fake_url}"]}}
models:
  - {{id: small, provider: fake-openai, upstream_model: small-up, weight: 3,
      max_context_tokens: 4096, input_per_1k: 0.0001, output_per_1k: 0.0002}}
  - {{id: medium, provider: fake-vllm, upstream_model: medium-up, weight: 5,
      max_context_tokens: 16000, input_per_1k: 0.0005, output_per_1k: 0.001}}
  - {{id: claude, provider: fake-anthropic, upstream_model: claude-up, weight: 7,
      max_context_tokens: 200000, input_per_1k: 0.003, output_per_1k: 0.015}}
  - {{id: large, provider: fake-vllm, upstream_model: large-up, weight: 9,
      max_context_tokens: 131072, input_per_1k: 0.01, output_per_1k: 0.03}}
aliases:
  - {{id: ab, targets: {{small: 1, medium: 1}}}}
"""


@pytest.fixture
def config_file(tmp_path: Path, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FAKE_OPENAI_KEY", "sk-test-openai-secret")
    monkeypatch.setenv("FAKE_ANTHROPIC_KEY", "sk-ant-test-secret")
    path = tmp_path / "tokenhub.yaml"
    path.write_text(catalog_yaml(fake.url))
    return path
