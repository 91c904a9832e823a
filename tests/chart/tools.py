"""Pinned chart tools, built or installed once per machine into ``~/.cache/mvno-nf/tools``.

- ``helm`` from the Go module proxy (``go install helm.sh/helm/v3/cmd/helm@HELM_VERSION``),
  several minutes on a busy 2-core host the first time.
- ``kubernetes-validate`` from PyPI (the Kubernetes JSON schemas, offline, strict mode),
  installed with pip into its own directory so the project's environment stays lean.

A lock file per tool makes concurrent first uses wait for one build instead of racing;
the finished tool is moved into place atomically, so a half-built one is never used.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HELM_VERSION = "v3.22.0"
KUBERNETES_VALIDATE_VERSION = "1.37.0"
CACHE = Path(os.environ.get("NF_TOOLS_CACHE", Path.home() / ".cache" / "mvno-nf" / "tools"))


class ToolUnavailable(Exception):
    """The tool cannot be had on this machine (no Go, no registry): say why."""


@contextmanager
def _locked(name: str) -> Iterator[None]:
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def helm() -> Path:
    """The pinned helm binary, building it on first use."""
    name = f"helm-{HELM_VERSION}"
    target = CACHE / name / "helm"
    if target.exists():
        return target
    go = shutil.which("go")
    if go is None:
        raise ToolUnavailable(f"helm {HELM_VERSION} is not in {CACHE} and Go is missing "
                              "to build it (go install helm.sh/helm/v3/cmd/helm)")
    with _locked(name):
        if target.exists():  # built by whoever held the lock before us
            return target
        log = CACHE / f"{name}.log"
        _say(f"building helm {HELM_VERSION} with go install (once per machine, several "
             f"minutes; log: {log})")
        with tempfile.TemporaryDirectory(dir=CACHE) as tmp, open(log, "wb") as out:
            env = {**os.environ, "GOBIN": tmp, "GOFLAGS": "-trimpath", "CGO_ENABLED": "0"}
            rc = subprocess.run([go, "install", f"helm.sh/helm/v3/cmd/helm@{HELM_VERSION}"],
                                env=env, stdout=out, stderr=subprocess.STDOUT,
                                cwd=tmp).returncode
            if rc != 0:
                raise ToolUnavailable(f"go install of helm {HELM_VERSION} failed (exit {rc}); "
                                      f"see {log}")
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(Path(tmp) / "helm", target)
    return target


def kubernetes_validate() -> Path:
    """A directory to put on ``sys.path`` that holds the pinned ``kubernetes_validate``."""
    name = f"kubernetes-validate-{KUBERNETES_VALIDATE_VERSION}"
    target = CACHE / name
    if (target / "kubernetes_validate").is_dir():
        return target
    with _locked(name):
        if (target / "kubernetes_validate").is_dir():
            return target
        _say(f"installing kubernetes-validate {KUBERNETES_VALIDATE_VERSION} into {target} "
             "(once per machine)")
        tmp = tempfile.mkdtemp(dir=CACHE)
        # With its dependencies, so it never depends on what the project's environment has.
        r = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--target", tmp,
             f"kubernetes-validate=={KUBERNETES_VALIDATE_VERSION}"],
            capture_output=True, text=True)
        if r.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise ToolUnavailable(f"pip could not install kubernetes-validate: "
                                  f"{r.stderr.strip()[-500:]}")
        os.replace(tmp, target)
    return target


def main() -> int:
    """Fetch both tools (``make chart-tools``); say why not, without failing."""
    try:
        print(f"helm {HELM_VERSION}: {helm()}")
        print(f"kubernetes-validate {KUBERNETES_VALIDATE_VERSION}: {kubernetes_validate()}")
    except ToolUnavailable as e:
        print(f"note: {e}; the chart tests will skip or fail saying so", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())


def helm_or_skip() -> Path:
    """The pinned helm for a test: skipped (saying why) only where Go is missing to build
    it; any other failure to build it fails the test."""
    import pytest

    try:
        return helm()
    except ToolUnavailable as e:
        if shutil.which("go") is None:
            pytest.skip(f"Go is missing to build helm: {e}")
        raise
