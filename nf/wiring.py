"""Which parts make up the NF, built by construction in dependency order.

Each slice adds its part here; nothing registers itself at import time.
"""

from __future__ import annotations

from nf.runtime import Part, Runtime


def build_parts(rt: Runtime) -> list[Part]:
    parts: list[Part] = []
    return parts
