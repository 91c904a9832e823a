"""Charging requests per second from the NF's own metrics (every process's counters when
``nf serve`` aggregates them): the rate between two looks at the request counter."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from nf.metrics import Metrics

CHARGING_PREFIX = "chf."


def charging_requests_total(metrics: Metrics) -> float:
    total = 0.0
    for fam in text_string_to_metric_families(metrics.render().decode()):
        if fam.name != "nf_sbi_requests":
            continue
        for s in fam.samples:
            if s.name.endswith("_total") and str(s.labels.get("operation", "")).startswith(
                    CHARGING_PREFIX):
                total += s.value
    return total


class RateMeter:
    """Requests per second since the previous reading (None on the first)."""

    def __init__(self) -> None:
        self._last: tuple[float, float] | None = None

    def read(self, total: float, at_s: float) -> float | None:
        last, self._last = self._last, (total, at_s)
        if last is None or at_s <= last[1]:
            return None
        return round(max(total - last[0], 0.0) / (at_s - last[1]), 2)
