"""The console's pure pieces: bucket bars, the 30-day usage chart, the request rate."""

from __future__ import annotations

from datetime import UTC, datetime

from nf.metrics import Metrics
from nf.oam.console.charts import bucket_bar, usage_chart
from nf.oam.console.rates import RateMeter, charging_requests_total

MIB = 1024 * 1024


def test_bucket_bar_segments_add_up_and_clamp() -> None:
    b = bucket_bar(100 * MIB, 25 * MIB, 5 * MIB)
    assert (b.used_pct, b.reserved_pct, b.remaining_pct) == (25.0, 5.0, 70.0)
    over = bucket_bar(100 * MIB, 130 * MIB, 10 * MIB)  # overage: the bar stays full
    assert (over.used_pct, over.reserved_pct, over.remaining_pct) == (100.0, 0.0, 0.0)
    empty = bucket_bar(0, 0, 0)
    assert empty.remaining_pct == 0.0 and "0.0 MB left" in empty.label


def test_usage_chart_scales_to_the_busiest_day() -> None:
    now = datetime(2026, 3, 31, 12, tzinfo=UTC)
    chart = usage_chart(now, {"2026-03-31": (300, 100), "2026-03-02": (200, 0),
                              "2026-03-01": (999, 999)}, n=30, width=300, height=100)
    assert len(chart.days) == 30
    assert chart.days[0].day == "2026-03-02" and chart.days[-1].day == "2026-03-31"
    last = chart.days[-1]
    assert last.full_h == 75.0 and last.thr_h == 25.0 and last.thr_y == 0.0
    assert chart.days[0].full_h == 50.0 and chart.days[1].full_h == 0.0
    assert chart.max_bytes == 400 and chart.total_full == 500
    assert chart.total_throttled == 100


def test_charging_rate_from_the_request_counter() -> None:
    m = Metrics()
    m.requests.labels("chf.create", "201").inc(3)
    m.requests.labels("chf.update", "200").inc(7)
    m.requests.labels("npcf_smpolicycontrol.create", "201").inc(50)
    assert charging_requests_total(m) == 10
    meter = RateMeter()
    assert meter.read(10, 100.0) is None
    assert meter.read(30, 110.0) == 2.0
    assert meter.read(30, 110.0) is None  # no time passed
