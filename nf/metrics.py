"""Prometheus metrics for one app instance (no module-level registry).

When ``PROMETHEUS_MULTIPROC_DIR`` is set (``nf serve`` sets it), every worker process writes
its samples there and ``/metrics`` on the OAM port aggregates all of them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

# Label sets whose children are kept at hand (operations x statuses seen; bounded anyway).
_LABEL_SETS_MAX = 1_000
# The ASGI scope key naming a request's operation (its label in the request metrics): set
# by the router that matched it (``nf.sbi.direct``, the framework's) or the token check.
OPERATION_KEY = "nf.operation"
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

        self.effects_oldest = Gauge(
            "nf_effects_oldest_pending_seconds", "Age of the oldest pending effect the "
            "sweeper found past its grace time in its last round (0: none), by kind",
            ["effect"], registry=r, multiprocess_mode="livemax")
        self.edr_wait = Histogram(
            "nf_edr_write_wait_seconds", "From an EDR entering the writer's buffer to its "
            "batch being stored (the EDR writer's lag)", buckets=LATENCY_BUCKETS_S,
            registry=r)
        self.policy_speed_changes = Counter(
            "nf_policy_speed_changes_total", "Policy decisions that changed a session's "
            "speed, by event (throttled: a cap crossed; restored; speed-changed)",
            ["event"], registry=r)
        self.nrf_registered = Gauge(
            "nf_nrf_registered", "1 while this NF's profile of the type is registered with "
            "the NRF (only while an NRF is configured)", ["nf_type"], registry=r,
            multiprocess_mode="livemax")
        self.smsc_bound = Gauge(
            "nf_smsc_bound", "1 while the SMPP session to the SMSC is bound (only while "
            "SMS is on), by SMSC address", ["smsc"], registry=r,
            multiprocess_mode="livemax")
        self.db_errors = Counter(
            "nf_db_errors_total", "Database commands that failed, by command and kind "
            "(timeout, network, other)", ["command", "kind"], registry=r)
        self.ready = Gauge(
            "nf_ready", "1 while the instance's last readiness check passed (/readyz)",
            registry=r, multiprocess_mode="livemax")
        self.cpu = Counter(
            "nf_process_cpu_seconds_total", "CPU time used by the NF's processes (every "
            "worker, sampled every few seconds)", registry=r)
        self._cpu_seen = time.process_time()

        self.db_latency = Histogram(
            "nf_db_operation_duration_seconds", "Database commands by command and collection",
            ["command", "collection"], buckets=LATENCY_BUCKETS_S, registry=r)
        # Per (command, collection): ``labels()`` costs as much as the observation, and
        # this runs for every database command. As many entries as label sets.
        self._db_observe: dict[tuple[str, str], Callable[[float], None]] = {}
        self.diameter_answers = Counter(
            "nf_diameter_answers_total", "Answers to Diameter requests by application id, "
            "command code and Result-Code (or Experimental-Result-Code)",
            ["application", "command", "result"], registry=r)
        self.diameter_latency = Histogram(
            "nf_diameter_request_duration_seconds", "Diameter requests handled by an "
            "application (Gy, Gx, Sy), by application id", ["application"],
            buckets=LATENCY_BUCKETS_S, registry=r)
        self.diameter_peers = Gauge(
            "nf_diameter_peers", "Diameter peers connected (capabilities exchanged)",
            registry=r, multiprocess_mode="livesum")
        self.diameter_push_wakes = Counter(
            "nf_diameter_push_wakes_total", "Wakes of the Diameter process's pusher by "
            "another process (nf.notify.wake): sent / dropped by the enqueuer, received / "
            "ignored (not a wake) by the Diameter process", ["outcome"], registry=r)
        # Per (operation, status): the request counter's and the latency's children.
        self._finished: dict[tuple[str, int], tuple[Callable[[], None],
                                                    Callable[[float], None]]] = {}

    def finished(self, operation: str, status: int, seconds: float) -> None:
        """One request answered (``status`` 0: it ended before any answer)."""
        fns = self._finished.get((operation, status))
        if fns is None:
            fns = (self.requests.labels(operation, str(status) if status else "aborted").inc,
                   self.latency.labels(operation).observe)
            if len(self._finished) < _LABEL_SETS_MAX:
                self._finished[operation, status] = fns
        fns[0]()
        fns[1](seconds)

    def db_operation(self, command: str, collection: str, seconds: float) -> None:
        observe = self._db_observe.get((command, collection))
        if observe is None:
            observe = self.db_latency.labels(command, collection).observe
            self._db_observe[command, collection] = observe
        observe(seconds)

    def db_failure(self, command: str, kind: str) -> None:
        self.db_errors.labels(command, kind).inc()

    def sample_cpu(self) -> None:
        """Add the CPU this process used since the last sample (call every few seconds)."""
        now = time.process_time()
        self.cpu.inc(max(0.0, now - self._cpu_seen))
        self._cpu_seen = now

    def render(self) -> bytes:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            agg = CollectorRegistry()
            MultiProcessCollector(agg)  # type: ignore[no-untyped-call]
            return generate_latest(agg)
        return generate_latest(self.registry)
