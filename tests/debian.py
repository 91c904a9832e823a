"""Debian packages a test needs (a browser, Prometheus), installed once per machine with
apt-get when they are missing and the tests run as root; otherwise the test is skipped
with what to install."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def package(name: str, *files: Path) -> None:
    """Make sure Debian's package ``name`` is installed (``files``: what it must provide),
    or skip the test saying why."""
    if all(f.exists() for f in files):
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip(f"Debian's {name} package is missing and cannot be installed here "
                    f"(needs root and apt-get): apt-get install {name}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", name]
    if subprocess.run(cmd, env=env, capture_output=True, timeout=900).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, timeout=900)
        subprocess.run(cmd, env=env, capture_output=True, timeout=900)
    if not all(f.exists() for f in files):
        pytest.skip(f"apt-get could not install Debian's {name} package")
