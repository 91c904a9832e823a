"""Policy counter statuses as reported by Nchf_SpendingLimitControl."""

from __future__ import annotations

from nf.ledger.port import CapState, PolicyCounters, RoamingState
from nf.slc import core
from tests import conformance as c

NORMAL = PolicyCounters(CapState.NORMAL, RoamingState.NONE)
CAPPED = PolicyCounters(CapState.EXHAUSTED, RoamingState.NONE)
ROAMING = PolicyCounters(CapState.NORMAL, RoamingState.AVAILABLE)


def test_status_infos_map_counters_to_statuses() -> None:
    body = core.spending_limit_status("imsi-001010000000001", CAPPED, core.COUNTER_IDS,
                                      notif_id="n1")
    assert body["statusInfos"] == {
        "data-cap": {"policyCounterId": "data-cap", "currentStatus": "exhausted"},
        "roaming": {"policyCounterId": "roaming", "currentStatus": "none"},
    }
    c.validate_schema(c.SLC, "SpendingLimitStatus", body)


def test_changed_only_reports_subscribed_counters() -> None:
    assert core.changed(NORMAL, CAPPED, ["data-cap", "roaming"]) == ["data-cap"]
    assert core.changed(NORMAL, CAPPED, ["roaming"]) == []
    assert core.changed(NORMAL, ROAMING, ["roaming"]) == ["roaming"]


def test_unknown_counter_ids_are_named() -> None:
    assert core.unknown_ids(["data-cap", "voice", "roaming", "sms"]) == ["voice", "sms"]
