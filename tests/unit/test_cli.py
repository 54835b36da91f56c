"""The tokenhub CLI: config (secrets masked), migrate, and bad config failing clearly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app

runner = CliRunner()


def test_config_masks_secrets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TOKENHUB_OPENAI_API_KEY", "sk-cli-secret-value")
    monkeypatch.setenv("TOKENHUB_DATA_DIR", str(tmp_path))
    result = runner.invoke(app, ["config"])
    assert result.exit_code == 0, result.output
    assert "sk-cli-secret-value" not in result.output
    data = json.loads(result.output)
    assert data["settings"]["openai_api_key"] == "********"
    assert [p["id"] for p in data["providers"]] == ["openai"]


def test_migrate_creates_the_database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TOKENHUB_DATA_DIR", str(tmp_path / "data"))
    result = runner.invoke(app, ["migrate"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "data" / "tokenhub.db").exists()


def test_bad_config_fails_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENHUB_MAX_BODY_BYTES", "-5")
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 2
    assert "TOKENHUB_MAX_BODY_BYTES" in result.output
