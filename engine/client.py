"""Connect to Temporal and register TokenHub's search attributes (gateway and worker)."""

from __future__ import annotations

import asyncio
import logging
import time

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)
from temporalio.service import RetryConfig

from engine import attributes
from engine.codec import data_converter
from shared.config import Settings

log = logging.getLogger("tokenhub.temporal")

# The gateway must notice a dead Temporal within about a second (then it serves locally);
# a worker keeps the SDK's patient defaults.
FAST_FAIL = RetryConfig(initial_interval_millis=50, max_interval_millis=200,
                        max_elapsed_time_millis=1000, max_retries=4)


class _Throttle(logging.Filter):
    """One line per kind of message per window: while Temporal is down every poller of a
    worker reports each retry."""

    def __init__(self, window_s: float) -> None:
        super().__init__()
        self.window_s = window_s
        self._last: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = f"{record.name}:{str(record.msg)[:64]}"
        now = time.monotonic()
        if now - self._last.get(key, -self.window_s) < self.window_s:
            return False
        self._last[key] = now
        return True


_forwarding = False


def forward_core_logs(window_s: float = 10.0) -> None:
    """Route the SDK core's own log lines (Rust; ANSI-coloured on stderr by default) through
    Python logging, so they get this process's format and secret redaction. Call before the
    first client is made (entrypoints only; idempotent)."""
    global _forwarding
    if _forwarding:
        return
    core = logging.getLogger("temporalio.core")
    core.addFilter(_Throttle(window_s))
    Runtime.set_default(Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(
        filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
        forwarding=LogForwardingConfig(logger=core, append_target_to_name=False)))),
        error_if_already_set=False)
    _forwarding = True


async def connect(settings: Settings, *, timeout_s: float | None = None,
                  retry: RetryConfig | None = None) -> Client:
    """A client with TokenHub's data converter (engine/codec.py: encrypted payloads when
    TOKENHUB_TEMPORAL_PAYLOAD_KEYS is set); its workers inherit the converter."""
    coro = Client.connect(settings.temporal_address, namespace=settings.temporal_namespace,
                          data_converter=data_converter(settings.read_payload_keys()),
                          retry_config=retry)
    return await asyncio.wait_for(coro, timeout_s or settings.temporal_connect_timeout_s)


async def ensure_search_attributes(client: Client, namespace: str) -> None:
    """Register TokenHub's search attributes (idempotent; needs operator rights)."""
    svc = client.operator_service
    existing = await svc.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace))
    known = set(existing.custom_attributes)
    types = {"KEYWORD": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
             "KEYWORD_LIST": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
             "DOUBLE": IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE}
    missing = {k.name: types[k.indexed_value_type.name]
               for k in attributes.ALL_KEYS if k.name not in known}
    if missing:
        await svc.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing))
        log.info("registered search attributes: %s", ", ".join(sorted(missing)))
