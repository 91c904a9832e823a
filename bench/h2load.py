"""The transport ceiling: ``h2load`` (nghttp2) against the trivial ``GET /healthz`` of the
same SBI server, with the same connection and stream counts as the load generator."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import asdict, dataclass

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


@dataclass(frozen=True)
class H2loadResult:
    req_per_s: float
    total: int
    succeeded: int
    failed: int
    errored: int
    timeout: int
    status_2xx: int
    status_4xx: int
    status_5xx: int
    min_ms: float
    max_ms: float
    mean_ms: float
    sd_ms: float
    protocol: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if m is None:
        raise ValueError(f"not a duration: {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse(output: str) -> H2loadResult:
    """Read h2load's summary. Raises ValueError if a line it needs is missing."""
    def need(pattern: str) -> re.Match[str]:
        m = re.search(pattern, output, re.MULTILINE)
        if m is None:
            raise ValueError(f"h2load output lacks {pattern!r}")
        return m

    fin = need(r"^finished in [\d.]+s, ([\d.]+) req/s")
    req = need(r"^requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, "
               r"(\d+) errored, (\d+) timeout")
    st = need(r"^status codes: (\d+) 2xx, \d+ 3xx, (\d+) 4xx, (\d+) 5xx")
    t = need(r"^time for request:\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)")
    proto = re.search(r"^Application protocol: (\S+)", output, re.MULTILINE)
    return H2loadResult(
        req_per_s=float(fin.group(1)),
        total=int(req.group(1)), succeeded=int(req.group(2)), failed=int(req.group(3)),
        errored=int(req.group(4)), timeout=int(req.group(5)),
        status_2xx=int(st.group(1)), status_4xx=int(st.group(2)), status_5xx=int(st.group(3)),
        min_ms=_ms(t.group(1)), max_ms=_ms(t.group(2)), mean_ms=_ms(t.group(3)),
        sd_ms=_ms(t.group(4)),
        protocol=proto.group(1) if proto else "unknown",
    )


def binary() -> str | None:
    return shutil.which("h2load")


def ensure_installed() -> tuple[str | None, str]:
    """Find h2load, or try to install Debian's nghttp2-client (needs root). Returns
    (path or None, message)."""
    found = binary()
    if found:
        return found, f"h2load at {found}"
    apt = shutil.which("apt-get")
    if apt is None:
        return None, "h2load not found and no apt-get: ceiling skipped (install nghttp2-client)"
    try:
        res = subprocess.run([apt, "install", "-y", "-q", "nghttp2-client"],
                             capture_output=True, timeout=300, check=False)
        if res.returncode != 0:
            subprocess.run([apt, "update", "-q"], capture_output=True, timeout=300, check=False)
            res = subprocess.run([apt, "install", "-y", "-q", "nghttp2-client"],
                                 capture_output=True, timeout=300, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"installing nghttp2-client failed ({e}): ceiling skipped"
    found = binary()
    if found:
        return found, f"installed nghttp2-client: h2load at {found}"
    return None, ("h2load not found and `apt-get install nghttp2-client` failed "
                  f"(exit {res.returncode}; not root?): ceiling skipped")


def command(h2load: str, url: str, *, conns: int, streams: int, duration_s: float,
            warmup_s: float) -> list[str]:
    if not url.startswith(("http://127.0.0.1:", "http://localhost:")):
        raise ValueError("the ceiling is only ever measured against the loopback address")
    return [h2load, "-c", str(conns), "-m", str(streams), "-t", "1",
            "-D", str(max(1, round(duration_s))), "--warm-up-time", str(max(0, round(warmup_s))),
            url]


def run(h2load: str, url: str, *, conns: int, streams: int, duration_s: float,
        warmup_s: float) -> tuple[H2loadResult, str]:
    cmd = command(h2load, url, conns=conns, streams=streams, duration_s=duration_s,
                  warmup_s=warmup_s)
    res = subprocess.run(cmd, capture_output=True, text=True,
                         timeout=duration_s + warmup_s + 60, check=False)
    out = res.stdout + res.stderr
    if res.returncode != 0:
        raise RuntimeError(f"h2load exited with {res.returncode}:\n{out[-2000:]}")
    return parse(out), out
