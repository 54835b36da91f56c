"""Prometheus metrics, held on one registry per process (built in the entrypoint).

Under ``tokenhub serve --workers N`` the supervisor sets ``PROMETHEUS_MULTIPROC_DIR``
(api/processes.py): every process then writes its values to files there (prometheus-client's
multiprocess mode) and ``/metrics``, whichever process serves it, reads them all, so counters
and histograms are the sums over the processes. Gauges say how they combine: the worst
circuit state, the vault unlocked only if it is in every process, the queues summed.
One process without that variable: one in-memory registry, as before.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from shared.orchestration.records import RunSummary

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    """Every metric TokenHub exports. Labels never carry secrets or free text."""

    def __init__(self, registry: CollectorRegistry | None = None, *,
                 multiprocess_dir: str | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.multiprocess_dir = multiprocess_dir
        r = self.registry
        self.requests = Counter("tokenhub_requests", "Requests served",
                                ["route", "status"], registry=r)
        self.latency = Histogram("tokenhub_request_latency_seconds", "Gateway request latency",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=r)
        self.tokens = Counter("tokenhub_tokens", "Tokens processed",
                              ["model", "direction"], registry=r)
        self.cost = Counter("tokenhub_cost_usd", "Cost in USD", ["model"], registry=r)
        self.provider_errors = Counter("tokenhub_provider_errors", "Provider errors by class",
                                       ["provider", "error_class"], registry=r)
        self.failovers = Counter("tokenhub_failovers", "Runs served after a failover",
                                 ["kind"], registry=r)
        self.executor = Counter("tokenhub_executor", "Runs by the executor that ran them",
                                ["executor", "kind"], registry=r)
        self.temporal_fallback = Counter("tokenhub_temporal_fallback",
                                         "Requests run locally because Temporal was unreachable",
                                         registry=r)
        self.circuit_state = Gauge("tokenhub_temporal_circuit_state",
                                   "Temporal circuit breaker: 0 closed, 1 half-open, 2 open",
                                   registry=r, multiprocess_mode="livemax")
        self.temporal_probes = Counter("tokenhub_temporal_probes",
                                       "Background probes of Temporal while the circuit is "
                                       "open, by outcome", ["outcome"], registry=r)
        self.rate_limited = Counter("tokenhub_rate_limited", "Requests refused by rate limits",
                                    ["scope"], registry=r)
        self.vault_unlocked = Gauge("tokenhub_vault_unlocked", "1 when the vault is unlocked",
                                    registry=r, multiprocess_mode="livemin")
        self.log_dropped = Counter("tokenhub_request_log_dropped",
                                   "Request-log rows that could not be written", registry=r)
        self.model_calls = Counter("tokenhub_model_calls",
                                   "Provider calls per model, by outcome (ok or error class)",
                                   ["model", "provider", "status"], registry=r)
        self.pruned = Counter("tokenhub_pruned_rows", "Rows deleted by retention pruning",
                              ["table"], registry=r)
        self.cache = Counter("tokenhub_cache_lookups", "Response cache lookups by result "
                             "(hit, miss, error: the store failed and the request ran)",
                             ["result"], registry=r)
        self.cache_stores = Counter("tokenhub_cache_stores", "Answers stored in the response "
                                    "cache, by outcome (ok, error)", ["outcome"], registry=r)
        self.log_queue = Gauge("tokenhub_request_log_queue",
                               "Request-log rows waiting to be written", registry=r,
                               multiprocess_mode="livesum")

    def exposition(self) -> bytes:
        """The text format for ``/metrics``: every process's values under --workers N."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        MultiProcessCollector(merged, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        return generate_latest(merged)

    def observe_run(self, run: RunSummary) -> None:
        """A run's metrics, from its summary (the one place they are counted)."""
        self.executor.labels(run.executor, run.kind).inc()
        if run.failed_over:
            self.failovers.labels(run.kind).inc()
        for a in run.attempts:
            self.model_calls.labels(a.model, a.provider, a.outcome).inc()
            if a.outcome != "ok":
                self.provider_errors.labels(a.provider, a.outcome).inc()
            if a.cost_usd:
                self.cost.labels(a.model).inc(a.cost_usd)
            if a.input_tokens:
                self.tokens.labels(a.model, "input").inc(a.input_tokens)
            if a.output_tokens:
                self.tokens.labels(a.model, "output").inc(a.output_tokens)

    def count_pruned(self, table: str, rows: int) -> None:
        self.pruned.labels(table).inc(rows)
