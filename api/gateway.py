"""The gateway's services in one place: ``request.app.state.tokenhub``.

``create_app`` builds it with what exists before start-up (settings, catalog, metrics,
the secret registry); the lifespan adds the services that need the database and the
event loop. Routes reach everything through it (``api/deps.py``), nothing else is kept
on ``app.state``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from api.dispatch import Dispatcher
from api.runs import AsyncRuns
from api.security import SecurityState
from api.service import RequestService
from api.state import AppState
from engine.codec import EncryptionCodec
from shared.config import Catalog, Settings
from shared.security.redact import SecretRegistry
from shared.telemetry.metrics import Metrics

if TYPE_CHECKING:
    from api.batches import Batches


class Gateway:
    state: AppState
    security: SecurityState
    dispatcher: Dispatcher
    service: RequestService
    runs: AsyncRuns
    batches: Batches

    def __init__(self, *, settings: Settings, catalog: Catalog, metrics: Metrics,
                 secrets: SecretRegistry, codec: EncryptionCodec | None = None) -> None:
        self.settings, self.catalog, self.metrics, self.secrets = (
            settings, catalog, metrics, secrets)
        self.codec = codec  # the codec server's (api/routes/codec.py); None: encryption off
