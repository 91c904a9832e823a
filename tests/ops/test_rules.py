"""The chart's alert rules with Debian's ``promtool``: they load (``check rules``), and
each alert fires on input series that should fire it and stays quiet on series that should
not (``test rules``). Every alert has a runbook entry; each can be turned off and tuned
through the chart's values."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart import check
from tests.ops import prom

pytestmark = pytest.mark.timeout(1200)  # the first run on a machine builds helm

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = ROOT / "docs" / "RUNBOOK.md"
A, B = "10.0.0.1:8080", "10.0.0.2:8080"  # two instances
ALERTS = ["NfThrottleLatencyHigh", "NfCapCrossedWithoutNotification", "NfEffectsBacklog",
          "NfEdrWriterLag", "NfNrfNotRegistered", "NfSmscNotBound", "NfSmsFailing",
          "NfDatabaseErrors", "NfCongestion", "NfNotReady", "NfFraudCasesOpen"]


@pytest.fixture(scope="module")
def groups() -> dict[str, Any]:
    return prom.rule_groups()


def s(name: str, **labels: str) -> str:
    """A series name with the tests' job label."""
    inner = ",".join(f'{k}="{v}"' for k, v in {"job": prom.JOB, **labels}.items())
    return f"{name}{{{inner}}}"


def histogram(name: str, slow: bool, **labels: str) -> list[dict[str, str]]:
    """Ten observations a minute, all at most 0.5 s, or all between 1 and 2.5 s."""
    out = []
    for le in ("0.5", "1.0", "2.5", "+Inf"):
        per_min = 10 if (le in ("2.5", "+Inf") or not slow) else 0
        out.append({"series": s(f"{name}_bucket", le=le, **labels),
                    "values": f"0+{per_min}x30"})
    return out


def case(alert: str, eval_time: str, fire: list[dict[str, str]], quiet: list[dict[str, str]],
         labels: list[dict[str, str]], severity: str) -> list[dict[str, Any]]:
    """Two promtool tests: series that fire ``alert`` (with these ``labels``) at
    ``eval_time``, and series that leave it quiet."""
    url = f"docs/RUNBOOK.md#{alert.lower()}"
    exp = [{"exp_labels": {**lb, "severity": severity}, "exp_annotations": {"runbook_url": url}}
           for lb in labels]
    return [
        {"name": f"{alert} fires", "interval": "1m", "input_series": fire,
         "alert_rule_test": [{"eval_time": eval_time, "alertname": alert, "exp_alerts": exp}]},
        {"name": f"{alert} stays quiet", "interval": "1m", "input_series": quiet,
         "alert_rule_test": [{"eval_time": eval_time, "alertname": alert, "exp_alerts": []}]},
    ]


def cases() -> list[dict[str, Any]]:
    crit, warn = "critical", "warning"
    speed, sent = "nf_policy_speed_changes_total", "nf_notifications_total"
    notices = "nf_subscriber_notices_total"
    return [
        *case("NfThrottleLatencyHigh", "15m",
              histogram("nf_notification_delay_seconds", True, kind="pcf.update"),
              histogram("nf_notification_delay_seconds", False, kind="pcf.update")
              + histogram("nf_notification_delay_seconds", True, kind="chf.notify"),
              [{}], crit),
        *case("NfCapCrossedWithoutNotification", "20m",
              [{"series": s(speed, event="throttled"), "values": "0+1x30"},
               {"series": s(sent, kind="pcf.update", outcome="sent"), "values": "0x30"},
               {"series": s(sent, kind="pcf.update", outcome="retry"), "values": "0+1x30"}],
              [{"series": s(speed, event="throttled"), "values": "0+1x30"},
               {"series": s(sent, kind="pcf.update", outcome="sent"), "values": "0+1x30"}],
              [{}], crit),
        *case("NfEffectsBacklog", "5m",
              [{"series": s("nf_effects_oldest_pending_seconds", effect="counters",
                            instance=A), "values": "120x10"}],
              [{"series": s("nf_effects_oldest_pending_seconds", effect="counters",
                            instance=A), "values": "30x10"}],
              [{"instance": A, "effect": "counters"}], crit),
        *case("NfEdrWriterLag", "15m",
              histogram("nf_edr_write_wait_seconds", True, instance=A),
              histogram("nf_edr_write_wait_seconds", False, instance=A),
              [{"instance": A}], warn),
        *case("NfNrfNotRegistered", "5m",
              [{"series": s("nf_nrf_registered", nf_type="CHF", instance=A), "values": "0x10"},
               {"series": s("nf_nrf_registered", nf_type="PCF", instance=A), "values": "1x10"}],
              [{"series": s("nf_nrf_registered", nf_type="CHF", instance=A), "values": "1x10"},
               # Lost for a moment only (shorter than "for").
               {"series": s("nf_nrf_registered", nf_type="PCF", instance=A),
                "values": "1 1 1 0 1 1 1 1 1 1"}],
              [{"instance": A, "nf_type": "CHF"}], crit),
        *case("NfSmscNotBound", "5m",
              [{"series": s("nf_smsc_bound", smsc="smsc:2775", instance=A), "values": "0x10"},
               {"series": s("nf_smsc_bound", smsc="smsc:2775", instance=B), "values": "1x10"}],
              [{"series": s("nf_smsc_bound", smsc="smsc:2775", instance=A), "values": "1x10"}],
              [{"instance": A, "smsc": "smsc:2775"}], warn),
        *case("NfSmsFailing", "20m",
              [{"series": s(notices, brand="lumen", channel="sms", state="failed"),
                "values": "0+2x30"},
               {"series": s(notices, brand="lumen", channel="sms", state="submitted"),
                "values": "0+8x30"},
               {"series": s(notices, brand="harbor", channel="sms", state="submitted"),
                "values": "0+10x30"},
               {"series": s(notices, brand="harbor", channel="sms", state="failed"),
                "values": "0x30"}],
              [{"series": s(notices, brand="lumen", channel="sms", state="failed"),
                "values": "0+0x30"},
               {"series": s(notices, brand="lumen", channel="sms", state="submitted"),
                "values": "0+8x30"},
               # Webhook failures are not SMS failures.
               {"series": s(notices, brand="lumen", channel="webhook", state="failed"),
                "values": "0+8x30"}],
              [{"brand": "lumen"}], warn),
        *case("NfDatabaseErrors", "15m",
              [{"series": s("nf_db_errors_total", command="update", kind="timeout",
                            instance=A), "values": "0+60x20"}],
              [{"series": s("nf_db_errors_total", command="update", kind="timeout",
                            instance=A), "values": "0+1x20"}],
              [{"instance": A}], crit),
        *case("NfCongestion", "15m",
              [{"series": s("nf_sbi_rejected_total", cause="NF_CONGESTION", instance=A),
                "values": "0+120x20"}],
              [{"series": s("nf_sbi_rejected_total", cause="NF_CONGESTION", instance=A),
                "values": "0+30x20"},
               {"series": s("nf_sbi_rejected_total", cause="OTHER", instance=A),
                "values": "0+600x20"}],
              [{"instance": A}], warn),
        *case("NfNotReady", "10m",
              [{"series": s("nf_ready", instance=A), "values": "0x12"},
               {"series": s("up", instance=A), "values": "1x12"},
               {"series": s("up", instance=B), "values": "0x12"}],
              [{"series": s("nf_ready", instance=A), "values": "1x12"},
               {"series": s("up", instance=A), "values": "1x12"}],
              [{"instance": A}, {"instance": B, "job": prom.JOB}], crit),
        *case("NfFraudCasesOpen", "35m",
              [{"series": s("nf_fraud_cases_open", brand="lumen", instance=A),
                "values": "80x40"},
               {"series": s("nf_fraud_cases_open", brand="harbor", instance=A),
                "values": "3x40"}],
              [{"series": s("nf_fraud_cases_open", brand="lumen", instance=A),
                "values": "10x40"}],
              [{"brand": "lumen"}], warn),
    ]


def test_the_rendered_rules_pass_promtool_check(groups: dict[str, Any], tmp_path: Path
                                                ) -> None:
    promtool, _ = prom.tools()
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(groups))
    r = subprocess.run([str(promtool), "check", "rules", str(path)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{len(ALERTS)} rules found" in r.stdout, r.stdout


def test_each_alert_fires_when_it_should_and_only_then(groups: dict[str, Any],
                                                       tmp_path: Path) -> None:
    promtool, _ = prom.tools()
    # The summaries (templates, checked by ``check rules``) are left out here: the tests
    # compare the labels and the runbook link.
    for g in groups["groups"]:
        for rule in g["rules"]:
            rule["annotations"].pop("summary")
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(groups))
    tests = cases()
    assert sorted({t["alert_rule_test"][0]["alertname"] for t in tests}) == sorted(ALERTS)
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(
        {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": tests},
        sort_keys=False))
    r = subprocess.run([str(promtool), "test", "rules", "tests.yml"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_alert_has_a_runbook_entry(groups: dict[str, Any]) -> None:
    assert sorted(prom.alert_names(groups)) == sorted(ALERTS)
    headings = {line[3:].strip() for line in RUNBOOK.read_text().splitlines()
                if line.startswith("## ")}
    assert set(ALERTS) <= headings, set(ALERTS) - headings


def test_alerts_are_turned_off_and_tuned_through_values(groups: dict[str, Any]) -> None:
    off = prom.rule_groups(["prometheusRule.alerts.smscNotBound.enabled=false",
                            "prometheusRule.alerts.congestion.enabled=false"])
    assert sorted(prom.alert_names(off)) == sorted(
        set(ALERTS) - {"NfSmscNotBound", "NfCongestion"})
    tuned = prom.rule_groups(["prometheusRule.alerts.effectsBacklog.seconds=300",
                              "prometheusRule.alerts.effectsBacklog.for=30s",
                              "prometheusRule.alerts.effectsBacklog.severity=warning",
                              "prometheusRule.rateWindow=2m"])
    rules = {r["alert"]: r for g in tuned["groups"] for r in g["rules"]}
    backlog = rules["NfEffectsBacklog"]
    assert backlog["expr"].endswith("> 300")
    assert backlog["for"] == "30s" and backlog["labels"] == {"severity": "warning"}
    assert "[2m]" in rules["NfDatabaseErrors"]["expr"]
    # No rule at all when turned off as a whole.
    r = check.render(sets=["prometheusRule.enabled=false"])
    assert r.ok, r.stderr
    assert "PrometheusRule" not in {m["kind"] for m in r.manifests}
