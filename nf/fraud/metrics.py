"""Fraud protection's metrics: detections, actions, resolutions, the reader's lag and the
open cases by brand (on the NF's one registry)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from nf.runtime import Runtime


class FraudMetrics:
    def __init__(self, rt: Runtime) -> None:
        r = rt.metrics.registry
        self.detections = Counter("nf_fraud_detections_total", "Fraud rule detections",
                                  ["rule", "brand"], registry=r)
        self.actions = Counter("nf_fraud_actions_total", "Fraud actions applied",
                               ["rule", "brand", "action"], registry=r)
        self.resolutions = Counter("nf_fraud_resolutions_total",
                                   "Fraud cases resolved (false_positive or confirmed)",
                                   ["rule", "brand", "resolution"], registry=r)
        self.edrs = Counter("nf_fraud_edrs_read_total", "EDRs read by fraud protection",
                            registry=r)
        self.lag = Gauge("nf_fraud_lag_seconds", "Age of the last EDR read when it was read",
                         registry=r, multiprocess_mode="max")
        self.open = Gauge("nf_fraud_cases_open", "Fraud cases open (not yet resolved by "
                          "care), by brand; counted by the reader", ["brand"], registry=r,
                          multiprocess_mode="livemax")
        # Brands with their own rules are shown (at 0) before their first case.
        self.open_brands: set[str] = set(rt.settings.fraud.brands)

    def count_open(self, by_brand: dict[str, int]) -> None:
        """Set the open cases gauge; a brand with no case left goes back to 0."""
        self.open_brands |= set(by_brand)
        for brand in self.open_brands:
            self.open.labels(brand).set(by_brand.get(brand, 0))
