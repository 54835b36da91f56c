"""The one retry spec: transient failures on the same model.

The local effects loop over :meth:`RetrySpec.delays`; the Temporal effects build
an activity ``RetryPolicy`` from the same fields (``worker``/``workflows`` do the
translation; this module stays free of temporalio).
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetrySpec:
    """Bounded exponential backoff with jitter for ``transient`` provider failures."""

    max_tries_per_model: int = 3
    initial_backoff_s: float = 0.1
    backoff_coefficient: float = 2.0
    max_backoff_s: float = 2.0
    jitter: float = 0.2  # ± fraction of each delay (local path; Temporal adds none)
    attempt_timeout_s: float = 120.0  # one provider call
    heartbeat_timeout_s: float = 10.0  # workflow path: a dead worker's call is retried after
    local_activities: bool = False  # workflow path: provider calls as local activities

    def delay(self, retry_number: int, rng: random.Random | None = None) -> float:
        """Delay before retry ``retry_number`` (1 = first retry)."""
        base = self.initial_backoff_s * self.backoff_coefficient ** (retry_number - 1)
        base = min(base, self.max_backoff_s)
        if rng is None or self.jitter <= 0:
            return base
        return max(0.0, base * (1 + rng.uniform(-self.jitter, self.jitter)))


DEFAULT_RETRY = RetrySpec()
