"""Debian's ``prometheus`` package (the server and ``promtool``) for the tests, and the
chart's alert rules and dashboard as Prometheus sees them.

The package is installed with apt-get when missing and the tests run as root; otherwise the
tests skip, saying what to install. ``Prometheus`` runs the real server on loopback on an
ephemeral port with its own configuration and storage, and reads its HTTP API.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from nf.store.embedded import free_port
from tests import debian
from tests.chart import check
from tests.chart import tools as chart_tools

PROMTOOL = Path("/usr/bin/promtool")
PROMETHEUS = Path("/usr/bin/prometheus")
DASHBOARD = check.CHART / "dashboards" / "nf.json"
JOB = "nf"  # the scrape job of the tests (the chart's ``prometheusRule.job``)


def tools() -> tuple[Path, Path]:
    """``promtool`` and ``prometheus`` from Debian's package, installed when missing."""
    debian.package("prometheus", PROMTOOL, PROMETHEUS)
    return PROMTOOL, PROMETHEUS


def helm() -> Path:
    """The chart's pinned helm (built once per machine); skip where Go is missing."""
    return chart_tools.helm_or_skip()


def rule_groups(sets: list[str] | None = None) -> dict[str, Any]:
    """The chart's PrometheusRule, rendered with ``sets``, as a Prometheus rule file."""
    helm()
    r = check.render(sets=[f"prometheusRule.job={JOB}", *(sets or [])])
    assert r.ok, r.stderr
    rules = [m for m in r.manifests if m["kind"] == "PrometheusRule"]
    assert len(rules) == 1, [m["kind"] for m in r.manifests]
    return {"groups": rules[0]["spec"]["groups"]}


def alert_names(groups: dict[str, Any]) -> list[str]:
    return [r["alert"] for g in groups["groups"] for r in g["rules"] if "alert" in r]


def dashboard_queries(rate_interval: str = "1m") -> list[tuple[str, str]]:
    """(panel title, PromQL) of every panel of the dashboard, with Grafana's variables
    replaced as Grafana would (every job; ``$__rate_interval``)."""
    dash = json.loads(DASHBOARD.read_text())
    out = []
    for panel in dash["panels"]:
        for target in panel["targets"]:
            expr = target["expr"].replace("$__rate_interval", rate_interval)
            out.append((panel["title"], re.sub(r'job=~"\$job"', 'job=~".+"', expr)))
    return out


@dataclass
class Prometheus:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def get(self, path: str, **params: str) -> Any:
        r = httpx.get(self.url + path, params=params, timeout=5)
        body = r.json()
        assert body.get("status") == "success", (path, params, body)
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.get("/api/v1/query", query=expr)
        result: list[dict[str, Any]] = data["result"]
        return result

    def alerts(self) -> dict[str, set[str]]:
        """Alert name -> the states its alerts are in now (pending, firing)."""
        out: dict[str, set[str]] = {}
        for a in self.get("/api/v1/alerts")["alerts"]:
            out.setdefault(a["labels"]["alertname"], set()).add(a["state"])
        return out

    def targets_up(self) -> bool:
        active = self.get("/api/v1/targets")["activeTargets"]
        return bool(active) and all(t["health"] == "up" for t in active)


@contextmanager
def running_prometheus(tmp: Path, target: str, groups: dict[str, Any],
                       interval_s: int = 1) -> Iterator[Prometheus]:
    """A real Prometheus that scrapes ``target`` (host:port, ``/metrics``) as job ``nf``
    every ``interval_s`` and evaluates ``groups`` as often."""
    _, binary = tools()
    home = tmp / "prometheus"
    home.mkdir()
    (home / "rules.yml").write_text(yaml.safe_dump(groups, sort_keys=False))
    (home / "prometheus.yml").write_text(yaml.safe_dump({
        "global": {"scrape_interval": f"{interval_s}s",
                   "evaluation_interval": f"{interval_s}s"},
        "rule_files": [str(home / "rules.yml")],
        "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": [target]}]}],
    }))
    port = free_port()
    log = home / "prometheus.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(binary), f"--config.file={home / 'prometheus.yml'}",
             f"--storage.tsdb.path={home / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}",
             "--web.console.templates=/usr/share/prometheus/consoles",
             "--web.console.libraries=/usr/share/prometheus/console_libraries"],
            stdout=out, stderr=subprocess.STDOUT)
    prom = Prometheus(f"http://127.0.0.1:{port}", proc, log)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(prom.url + "/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"Prometheus did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield prom
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
