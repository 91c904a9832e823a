"""Child-process helpers shared by the server supervisor and the embedded database."""

from __future__ import annotations

import ctypes
import signal
import sys

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
