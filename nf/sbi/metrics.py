"""Kept for the imports not yet moved: the NF's metrics live in ``nf.metrics``."""

from nf.metrics import LATENCY_BUCKETS_S, Metrics

__all__ = ["LATENCY_BUCKETS_S", "Metrics"]
