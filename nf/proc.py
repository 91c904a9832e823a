"""Process helpers: for the children of the server supervisor and the embedded database,
and for the long-running server processes (garbage collector, event loop)."""

from __future__ import annotations

import asyncio
import ctypes
import gc
import signal
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """``preexec_fn``: ask Linux to SIGTERM this child when the thread that started it ends,
    so that no server outlives the command that started it (no-op elsewhere)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


# Sent by a server's worker process to its server process when it stopped uncleanly (it
# cut requests in flight, or its background workers did not finish in time): the server
# process then exits 1, and so does ``nf serve``.
UNCLEAN_STOP_SIGNAL = signal.SIGUSR1


# Young-generation threshold for server processes (CPython's default is 700): a request
# allocates thousands of short-lived objects, none of them in reference cycles that matter.
GC_GEN0_THRESHOLD = 20_000


def tune_gc() -> None:
    """Make the cyclic garbage collector cheap in a long-running server process: what
    exists once the app is built (modules, schemas, settings) is moved out of the
    collector's sight (``gc.freeze``), and young collections run less often. Only for the
    processes that serve (an SBI or OAM worker, the Diameter process); tests building many
    apps in one process do not call it."""
    gc.collect()
    gc.freeze()
    _, g1, g2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, g1, g2)


def loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop for a server process that runs its own (the Diameter process), by
    the setting the SBI workers' loop follows (``server.granian_loop``): uvloop for
    ``uvloop``, and for ``auto`` when it is installed; None (asyncio's own) otherwise."""
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory
