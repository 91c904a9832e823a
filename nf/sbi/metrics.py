"""Prometheus metrics for one app instance (no module-level registry).

When ``PROMETHEUS_MULTIPROC_DIR`` is set (``nf serve`` sets it), every worker process writes
its samples there and ``/metrics`` on the OAM port aggregates all of them.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "nf_sbi_requests_total", "Requests by service operation and HTTP status",
            ["operation", "status"], registry=r)
        self.latency = Histogram(
            "nf_sbi_request_duration_seconds", "Request latency by service operation",
            ["operation"], buckets=LATENCY_BUCKETS_S, registry=r)
        self.inflight = Gauge(
            "nf_sbi_inflight_requests", "Requests being handled now",
            registry=r, multiprocess_mode="livesum")
        self.rejected = Counter(
            "nf_sbi_rejected_total", "Requests refused before handling, by cause",
            ["cause"], registry=r)
        self.notifications = Counter(
            "nf_notifications_total", "Notifications towards peers by kind and outcome",
            ["kind", "outcome"], registry=r)
        self.notification_latency = Histogram(
            "nf_notification_delay_seconds", "From enqueue to the peer's answer, by kind",
            ["kind"], buckets=LATENCY_BUCKETS_S, registry=r)
        self.outbox_pending = Gauge(
            "nf_outbox_pending", "Notifications waiting in this process",
            registry=r, multiprocess_mode="livesum")
        self.edrs = Counter(
            "nf_edr_written_total", "Event detail records written", ["kind"], registry=r)
        self.edr_buffered = Gauge(
            "nf_edr_buffered", "EDRs waiting to be written",
            registry=r, multiprocess_mode="livesum")
        self.ledger_conflicts = Counter(
            "nf_ledger_write_conflicts_total", "Optimistic ledger writes retried",
            registry=r)
        self.effects_delivered = Counter(
            "nf_effects_delivered_total", "Pending effects delivered, by kind",
            ["effect"], registry=r)
        self.effects_failed = Counter(
            "nf_effects_failed_total", "Pending effects whose delivery failed (retried by "
            "the sweeper), by kind", ["effect"], registry=r)
        self.effects_overflow = Counter(
            "nf_effects_overflow_total", "Pending effects left to the sweeper because the "
            "delivery queue was full, by kind", ["effect"], registry=r)
        self.effects_backlog_full = Counter(
            "nf_effects_backlog_full_total", "Wallet writes refused because the wallet "
            "held effects.max_pending_per_doc undelivered effects", registry=r)

        self.db_latency = Histogram(
            "nf_db_operation_duration_seconds", "Database commands by command and collection",
            ["command", "collection"], buckets=LATENCY_BUCKETS_S, registry=r)
        # Per (command, collection): ``labels()`` costs as much as the observation, and
        # this runs for every database command. As many entries as label sets.
        self._db_observe: dict[tuple[str, str], Callable[[float], None]] = {}

    def db_operation(self, command: str, collection: str, seconds: float) -> None:
        observe = self._db_observe.get((command, collection))
        if observe is None:
            observe = self.db_latency.labels(command, collection).observe
            self._db_observe[command, collection] = observe
        observe(seconds)

    def render(self) -> bytes:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            agg = CollectorRegistry()
            MultiProcessCollector(agg)  # type: ignore[no-untyped-call]
            return generate_latest(agg)
        return generate_latest(self.registry)
