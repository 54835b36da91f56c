"""The production files are valid: `docker compose config` and hadolint (no Docker engine
is needed for either)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    local = BIN / name
    found = str(local) if local.exists() else shutil.which(name)
    assert found, f"{name} is installed by the dev extra"
    return found


def test_compose_file_is_valid() -> None:
    out = subprocess.run([_tool("docker-compose"), "-f", str(ROOT / "docker-compose.yml"),
                          "config", "--quiet"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_dockerfile_lints_clean() -> None:
    out = subprocess.run([_tool("hadolint"), str(ROOT / "deploy" / "Dockerfile")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
