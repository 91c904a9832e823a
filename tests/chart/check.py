"""``make chart-check``: lint the chart, render it with the default values and with the
production-like values, validate every manifest offline in strict mode against the
Kubernetes schemas, and check that the configuration the pods get passes the NF's own
validation. ``python -m tests.chart`` runs it; the chart tests call the same functions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nf.config import Settings
from nf.errors import ConfigError
from tests.chart import tools

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "nf"
PRODUCTION = CHART / "ci" / "production-values.yaml"
# The oldest Kubernetes minor the chart supports and a current one.
KUBERNETES_VERSIONS = ["1.29.0", "1.34.0"]
EXTRA_SCHEMAS = {
    "monitoring.coreos.com/v1/ServiceMonitor":
        Path(__file__).with_name("servicemonitor.schema.json"),
    "monitoring.coreos.com/v1/PrometheusRule":
        Path(__file__).with_name("prometheusrule.schema.json"),
}
RELEASE, NAMESPACE = "nf", "mvno"


@dataclass(frozen=True)
class Rendered:
    ok: bool
    manifests: list[dict[str, Any]]
    stderr: str


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HELM_CACHE_HOME": str(tools.CACHE / "helm-home" / "cache"),
           "HELM_CONFIG_HOME": str(tools.CACHE / "helm-home" / "config"),
           "HELM_DATA_HOME": str(tools.CACHE / "helm-home" / "data")}
    return subprocess.run([str(tools.helm()), *args], capture_output=True, text=True,
                          env=env, timeout=120)


def lint(values: Path | None = None) -> subprocess.CompletedProcess[str]:
    extra = ["-f", str(values)] if values else []
    return helm("lint", "--strict", str(CHART), *extra)


def render(values: Path | None = None, sets: list[str] | None = None) -> Rendered:
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE]
    if values:
        args += ["-f", str(values)]
    for s in sets or []:
        args += ["--set", s]
    r = helm(*args)
    if r.returncode != 0:
        return Rendered(False, [], r.stderr)
    docs = [d for d in yaml.safe_load_all(r.stdout) if d]
    return Rendered(True, docs, r.stderr)


def validate(manifests: list[dict[str, Any]]) -> list[str]:
    """Problems found by the Kubernetes schemas (strict), one line each."""
    path = tools.kubernetes_validate()
    job = {"versions": KUBERNETES_VERSIONS, "manifests": manifests,
           "extra_schemas": {k: json.loads(p.read_text()) for k, p in EXTRA_SCHEMAS.items()}}
    env = {**os.environ, "PYTHONPATH": str(path)}
    r = subprocess.run([sys.executable, str(Path(__file__).with_name("kvalidate.py"))],
                       input=json.dumps(job), capture_output=True, text=True, env=env,
                       timeout=300)
    if r.returncode != 0:
        return [f"the validator failed: {r.stderr.strip()[-2000:]}"]
    problems: list[str] = json.loads(r.stdout)
    return problems


def find(manifests: list[dict[str, Any]], kind: str, suffix: str = "") -> dict[str, Any]:
    for m in manifests:
        if m["kind"] == kind and m["metadata"]["name"].endswith(suffix):
            return m
    raise KeyError(f"no {kind} named *{suffix} in the rendered chart")


def pod_settings(manifests: list[dict[str, Any]], tmp: Path) -> Settings:
    """The settings a pod starts with: the ConfigMap's nf.yaml plus the plain environment
    variables of the Deployment (those from the Secret are given stand-in values)."""
    cm = find(manifests, "ConfigMap")
    dep = find(manifests, "Deployment")
    cfg = tmp / "nf.yaml"
    cfg.write_text(cm["data"]["nf.yaml"])
    container = dep["spec"]["template"]["spec"]["containers"][0]
    stand_in = {"NF_MONGODB_URI": "mongodb://db.invalid:27017", "NF_INSTANCE_ID": "nf-0",
                "NF_API_KEYS": json.dumps({"sha256:" + "0" * 64: "*"})}
    env = {e["name"]: e.get("value", stand_in.get(e["name"], "")) for e in container["env"]}
    env.pop("NF_CATALOG_DIR", None)  # a mounted directory; checked by `nf catalog check`
    if not json.loads(env.get("NF_API_KEYS", "{}")):
        env.pop("NF_API_KEYS", None)
    saved = {k: v for k, v in os.environ.items() if k.startswith("NF_")}
    try:
        for k in saved:
            del os.environ[k]
        os.environ.update(env)
        return Settings.load(cfg)
    finally:
        for k in env:
            os.environ.pop(k, None)
        os.environ.update(saved)


def main() -> int:
    import tempfile

    t0 = time.monotonic()
    failed = False
    try:
        print(f"helm {tools.HELM_VERSION}: {tools.helm()}")
        print(f"kubernetes-validate {tools.KUBERNETES_VALIDATE_VERSION}: "
              f"{tools.kubernetes_validate()}")
    except tools.ToolUnavailable as e:
        print(f"chart-check: cannot run: {e}", file=sys.stderr)
        return 2
    for name, values in (("default values", None), ("production values", PRODUCTION)):
        r = lint(values)
        print(f"[{name}] helm lint --strict: {'ok' if r.returncode == 0 else 'FAILED'}")
        if r.returncode != 0:
            print(r.stdout + r.stderr)
            failed = True
        rendered = render(values)
        if not rendered.ok:
            print(f"[{name}] helm template FAILED:\n{rendered.stderr}")
            failed = True
            continue
        kinds = sorted(f"{m['kind']}/{m['metadata']['name']}" for m in rendered.manifests)
        problems = validate(rendered.manifests)
        print(f"[{name}] {len(kinds)} manifests, Kubernetes {', '.join(KUBERNETES_VERSIONS)} "
              f"strict: {'ok' if not problems else 'FAILED'}")
        for k in kinds:
            print(f"    {k}")
        for p in problems:
            print(f"    {p}")
        failed |= bool(problems)
        with tempfile.TemporaryDirectory() as tmp:
            try:
                pod_settings(rendered.manifests, Path(tmp))
                print(f"[{name}] the pods' configuration passes nf check-config: ok")
            except ConfigError as e:
                print(f"[{name}] the pods' configuration is invalid: {e}")
                failed = True
    print(f"chart-check: {'FAILED' if failed else 'passed'} in {time.monotonic() - t0:.1f}s")
    return 1 if failed else 0
