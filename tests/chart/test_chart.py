"""The Helm chart: lint, render, validate offline in strict mode (``make chart-check``'s
steps), what the rendered objects promise, and values the schema must refuse.

The pinned helm is built once per machine with Go (several minutes the first time); the
tests skip, saying so, only where Go is missing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart import check, tools

pytestmark = pytest.mark.timeout(1200)  # the first run builds helm


@pytest.fixture(scope="module")
def helm() -> Path:
    return tools.helm_or_skip()


@pytest.fixture(scope="module")
def production(helm: Path) -> list[dict[str, Any]]:
    r = check.render(check.PRODUCTION)
    assert r.ok, r.stderr
    return r.manifests


@pytest.fixture(scope="module")
def defaults(helm: Path) -> list[dict[str, Any]]:
    r = check.render()
    assert r.ok, r.stderr
    return r.manifests


@pytest.mark.parametrize("values", [None, check.PRODUCTION], ids=["default", "production"])
def test_lint_passes(helm: Path, values: Path | None) -> None:
    r = check.lint(values)
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_manifest_is_valid_kubernetes(defaults: list[dict[str, Any]],
                                            production: list[dict[str, Any]]) -> None:
    assert check.validate(defaults) == []
    assert check.validate(production) == []
    kinds = {m["kind"] for m in production}
    assert kinds == {"ConfigMap", "Deployment", "Service", "PodDisruptionBudget",
                     "HorizontalPodAutoscaler", "ServiceMonitor", "NetworkPolicy",
                     "PrometheusRule"}


def test_the_dashboard_ships_for_grafanas_sidecar(defaults: list[dict[str, Any]]) -> None:
    cm = check.find(defaults, "ConfigMap", "-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dash = json.loads(cm["data"]["nf.json"])
    assert dash == json.loads((check.CHART / "dashboards" / "nf.json").read_text())
    assert all(t["expr"] for p in dash["panels"] for t in p["targets"])
    off = check.render(sets=["dashboard.enabled=false"])
    assert off.ok, off.stderr
    assert [m["metadata"]["name"] for m in off.manifests if m["kind"] == "ConfigMap"] == ["nf"]


def test_the_validator_catches_a_misspelt_field(defaults: list[dict[str, Any]]) -> None:
    dep = check.find(defaults, "Deployment")
    broken = {**dep, "spec": {**dep["spec"], "replicas": 2, "replica": 2}}
    problems = check.validate([broken])
    assert problems and all("replica" in p for p in problems), problems


def test_what_the_pods_get(production: list[dict[str, Any]], tmp_path: Path) -> None:
    dep = check.find(production, "Deployment")
    pod = dep["spec"]["template"]["spec"]
    nf = pod["containers"][0]
    assert {p["name"]: p["containerPort"] for p in nf["ports"]} == {
        "sbi": 8000, "oam": 8080, "sbi-n0": 8101, "sbi-n1": 8102,  # two network listeners
        "diameter": 5658}
    assert nf["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "oam"}
    assert nf["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "oam"}
    # Graceful stop: the preStop pause, then shutdown_grace_s (20) and the supervisor's 5 s.
    assert nf["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "10"]
    assert pod["terminationGracePeriodSeconds"] >= 10 + 20 + 5
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert nf["securityContext"]["allowPrivilegeEscalation"] is False
    env = {e["name"]: e for e in nf["env"]}
    # Secrets never in the ConfigMap: from the operator's Secret, as environment and files.
    assert env["NF_MONGODB_URI"]["valueFrom"]["secretKeyRef"] == {
        "name": "nf-secrets", "key": "mongodb-uri"}
    assert env["NF_API_KEYS"]["valueFrom"]["secretKeyRef"]["key"] == "api-keys.json"
    assert env["NF_SERVER__TLS_CERT_FILE"]["value"] == "/etc/nf/secrets/tls.crt"
    assert not [m for m in production if m["kind"] == "Secret"]
    config = yaml.safe_load(check.find(production, "ConfigMap")["data"]["nf.yaml"])
    assert not {"mongodb_uri", "api_keys"} & set(config)
    settings = check.pod_settings(production, tmp_path)
    assert settings.server.shutdown_grace_s == 20 and settings.server.workers == 2
    assert settings.server.sbi_host == "0.0.0.0" and settings.server.tls
    assert [n.id for n in settings.networks] == ["northwind", "bluepeak", "redmoor"]
    assert [(n.id, n.sbi_port) for n in settings.listener_networks()] == [
        ("northwind", 8101), ("bluepeak", 8102)]
    # The console sits behind a proxy: its sign-in delays go by the client's address.
    assert settings.console.client_address_header == "X-Real-IP"
    # Diameter: the chart's port, all addresses, TLS from the Secret, the values' peers.
    dia = settings.diameter
    assert dia.enabled and (dia.host, dia.port) == ("0.0.0.0", 5658)
    assert dia.tls and str(dia.tls_cert_file) == "/etc/nf/secrets/diameter-tls.crt"
    assert (dia.origin_host, dia.answer_cache_size) == ("nf.mvno.example.org", 100_000)
    assert dia.networks["redmoor"].peers == ["pgw1.redmoor.example", "pgw2.redmoor.example"]


def test_sbi_and_oam_are_separate_services_and_the_sbi_is_fenced(
        production: list[dict[str, Any]]) -> None:
    sbi = check.find(production, "Service", "-sbi")
    oam = check.find(production, "Service", "-oam")
    assert [(p["name"], p["port"], p["targetPort"]) for p in sbi["spec"]["ports"]] == [
        ("sbi", 443, "sbi"), ("sbi-n0", 8101, "sbi-n0"), ("sbi-n1", 8102, "sbi-n1")]
    assert [p["name"] for p in oam["spec"]["ports"]] == ["oam"]
    assert oam["spec"]["type"] == "ClusterIP"
    pol = check.find(production, "NetworkPolicy")
    rules = pol["spec"]["ingress"]
    sbi_rule = next(r for r in rules if r["ports"] == [
        {"port": name, "protocol": "TCP"} for name in ("sbi", "sbi-n0", "sbi-n1")])
    assert [b["ipBlock"]["cidr"] for b in sbi_rule["from"]] == [
        "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32"]
    dia_rule = next(r for r in rules if r["ports"] == [{"port": "diameter", "protocol": "TCP"}])
    assert [b["ipBlock"]["cidr"] for b in dia_rule["from"]] == [
        "203.0.113.0/24", "198.51.100.0/24"]
    dia = check.find(production, "Service", "-diameter")
    assert [(p["name"], p["port"], p["targetPort"], p["protocol"])
            for p in dia["spec"]["ports"]] == [("diameter", 5658, "diameter", "TCP")]
    assert dia["spec"]["loadBalancerSourceRanges"] == ["203.0.113.0/24", "198.51.100.0/24"]
    mon = check.find(production, "ServiceMonitor")
    assert mon["spec"]["endpoints"][0]["port"] == "oam"


def test_default_values_create_their_own_secret(defaults: list[dict[str, Any]],
                                                tmp_path: Path) -> None:
    secret = check.find(defaults, "Secret")
    assert set(secret["data"]) == {"mongodb-uri"}
    pol = check.find(defaults, "NetworkPolicy")
    assert pol["spec"]["ingress"] == []  # no SBI ranges configured: nothing gets in
    assert not check.pod_settings(defaults, tmp_path).diameter.enabled


def test_diameter_off_by_default_and_on_when_enabled(defaults: list[dict[str, Any]],
                                                     tmp_path: Path) -> None:
    def ports(manifests: list[dict[str, Any]]) -> list[str]:
        nf = check.find(manifests, "Deployment")["spec"]["template"]["spec"]["containers"][0]
        return [p["name"] for p in nf["ports"]]

    assert ports(defaults) == ["sbi", "oam"]
    assert not [m for m in defaults if m["metadata"]["name"].endswith("-diameter")]
    config = yaml.safe_load(check.find(defaults, "ConfigMap")["data"]["nf.yaml"])
    assert "diameter" not in config
    net = ["config.networks[0].id=northwind", "config.networks[0].name=Northwind",
           "config.networks[0].plmn_ids[0]=00101"]
    on = check.render(sets=[*net, "diameter.enabled=true",
                            "diameter.config.origin_host=nf.mvno.example.org",
                            "diameter.config.networks.northwind.realms[0]=epc.northwind.example",
                            "diameter.config.networks.northwind.peers[0]=pgw.northwind.example",
                            "diameter.tls.enabled=true", "secrets.diameterTls.crt=c",
                            "secrets.diameterTls.key=k",
                            "networkPolicy.diameterCidrs[0]=192.0.2.0/24"])
    assert on.ok, on.stderr
    assert check.validate(on.manifests) == []
    assert ports(on.manifests) == ["sbi", "oam", "diameter"]
    svc = check.find(on.manifests, "Service", "-diameter")
    assert svc["spec"]["type"] == "ClusterIP"
    assert [(p["port"], p["targetPort"]) for p in svc["spec"]["ports"]] == [(3868, "diameter")]
    assert set(check.find(on.manifests, "Secret")["data"]) == {
        "mongodb-uri", "diameter-tls.crt", "diameter-tls.key"}
    rules = check.find(on.manifests, "NetworkPolicy")["spec"]["ingress"]
    assert rules == [{"from": [{"ipBlock": {"cidr": "192.0.2.0/24"}}],
                      "ports": [{"port": "diameter", "protocol": "TCP"}]}]
    dia = check.pod_settings(on.manifests, tmp_path).diameter
    assert dia.enabled and (dia.host, dia.port, dia.tls) == ("0.0.0.0", 3868, True)
    assert dia.networks["northwind"].peers == ["pgw.northwind.example"]
    # Diameter's ranges open nothing while Diameter is off.
    off = check.render(sets=["networkPolicy.diameterCidrs[0]=192.0.2.0/24"])
    assert off.ok, off.stderr
    assert check.find(off.manifests, "NetworkPolicy")["spec"]["ingress"] == []


def test_hashed_api_keys_and_oauth2_material_go_to_the_secret(helm: Path) -> None:
    digest = "sha256:" + "ab" * 32
    r = check.render(sets=[f"secrets.apiKeys.{digest}=lumen",
                           "secrets.oauth2.oauth2-jwks\\.json=jwks"])
    assert r.ok, r.stderr
    data = check.find(r.manifests, "Secret")["data"]
    assert set(data) == {"mongodb-uri", "api-keys.json", "oauth2-jwks.json"}
    r = check.render(sets=["secrets.clientCas.client-ca-northwind\\.pem=pem"])
    assert r.ok, r.stderr
    assert "client-ca-northwind.pem" in check.find(r.manifests, "Secret")["data"]


@pytest.mark.parametrize(("setting", "why"), [
    ("replicaCount=0", "replicaCount"),
    ("ports.sbi=70000", "sbi"),
    ("image.pullPolicy=Sometimes", "pullPolicy"),
    ("networkPolicy.sbiCidrs[0]=10.1.2.3", "sbiCidrs"),
    ("secrets.apiKeys.short=lumen", "short"),  # a key of fewer than 16 characters
    ("config.server.sbi_port=9000", "server"),
    ("config.mongodb_uri=mongodb://x", "config"),
    ("config.server.shutdown_grace_s=-1", "shutdown_grace_s"),
    ("replicas=3", "replicas"),
    ("tls.enabled=true", "crt"),  # TLS without a key pair and without an existing Secret
    # A host network's own listener: its CA file too, from the Secret, and TLS on.
    ("config.networks[0].sbi_port=8101", "tls_client_ca_file"),
    ("config.networks[0].tls_client_ca_file=/tmp/ca.pem", "client-ca-"),
    ("secrets.clientCas.ca\\.pem=x", "ca.pem"),
    ("config.console.client_address_header=X-Real-IP;evil", "client_address_header"),
    # Diameter's section comes from diameter.config; where it listens, from the chart.
    ("config.diameter.enabled=true", "config"),
    ("diameter.config.port=3869", "/diameter/config"),
    ("diameter.port=0", "port"),
    ("diameter.config.networks.northwind.peers[0]=pgw one", "peers"),
    ("diameter.tls.enabled=true", "diameterTls"),  # no key pair, no existing Secret
    ("networkPolicy.diameterCidrs[0]=10.1.2.3", "diameterCidrs"),
])
def test_a_wrong_value_is_refused_by_the_schema(helm: Path, setting: str, why: str) -> None:
    r = check.render(sets=[setting])
    assert not r.ok
    assert "values don't meet the specifications of the schema" in r.stderr, r.stderr
    assert why in r.stderr, r.stderr


def test_autoscaling_bounds_must_be_ordered(helm: Path) -> None:
    r = check.render(sets=["autoscaling.enabled=true", "autoscaling.minReplicas=5",
                           "autoscaling.maxReplicas=3"])
    assert not r.ok and "minReplicas must not exceed" in r.stderr, r.stderr


def test_a_network_listener_needs_tls(helm: Path) -> None:
    net = ["config.networks[0].id=a", "config.networks[0].name=A",
           "config.networks[0].plmn_ids[0]=00101", "config.networks[0].sbi_port=8101",
           "config.networks[0].tls_client_ca_file=/etc/nf/secrets/client-ca-a.pem"]
    r = check.render(sets=net)
    assert not r.ok and "/tls/enabled" in r.stderr, r.stderr
    r = check.render(sets=[*net, "tls.enabled=true", "secrets.tls.crt=c", "secrets.tls.key=k"])
    assert r.ok, r.stderr
