"""Metrics the alerts and the dashboard read that are not tied to one slice."""

from __future__ import annotations

import time

from nf.metrics import Metrics


def test_cpu_is_added_sample_by_sample() -> None:
    m = Metrics()
    m.sample_cpu()
    start = m.cpu._value.get()
    t0 = time.process_time()
    while time.process_time() - t0 < 0.05:  # burn 50 ms of CPU
        sum(range(1000))
    m.sample_cpu()
    used = m.cpu._value.get() - start
    assert 0.05 <= used < 1.0
    m.sample_cpu()  # nothing used since: (almost) nothing added
    assert m.cpu._value.get() - start - used < 0.01
    assert "nf_process_cpu_seconds_total" in m.render().decode()
