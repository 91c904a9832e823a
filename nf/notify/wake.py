"""Waking the Diameter process's pusher from the other processes of the same ``nf serve``.

A ``diameter://`` push enqueued in the OAM process (a purchase restoring speed, a top-up)
or in an SBI worker is sent by the Diameter process, which would otherwise find it only at
its next look at the outbox (``diameter.push_poll_interval_s``). So the enqueuing process
sends one small datagram to a Unix socket the Diameter process listens on; ``nf serve``
makes the socket's path and hands it to its children (``diameter.wake_socket``).

- **Cheap for the enqueuer** (``Waker``): one non-blocking ``sendto``, no database
  operation, never a wait. A wake that cannot be delivered (no listener yet, its queue
  full, any error) is dropped and counted: the push is in the database, and the pusher's
  poll still finds it. A full queue already holds a wake, so nothing is lost then.
- **Bounded for the listener** (``WakeListener``): the kernel keeps a short queue of
  datagrams; each turn of the loop reads at most ``DRAIN_MAX`` of at most
  ``DATAGRAM_MAX`` bytes (a longer one is cut by the kernel), and any that is not
  ``MESSAGE`` is ignored and counted. One event is set however many wakes arrive.

The socket's directory is the supervisor's own (mode 0700), so only the NF's user can
write to it; a wake carries nothing but "look now".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import stat
from pathlib import Path
from types import TracebackType

from nf import logs
from nf.metrics import Metrics

log = logging.getLogger("nf.notify")

MESSAGE = b"nf:diameter-push"
# The longest datagram read; anything longer is junk and the kernel drops its tail.
DATAGRAM_MAX = 64
# Datagrams read in one turn of the event loop; more wait for the next turn.
DRAIN_MAX = 256


class Waker:
    """The enqueuing side: ``wake()`` after a Diameter push is stored; the socket is
    opened at the first wake and kept."""

    def __init__(self, path: Path | str, metrics: Metrics | None = None) -> None:
        self._path = str(path)
        self._metrics = metrics
        self._sock: socket.socket | None = None
        self._closed = False
        self._failing = False  # the last wake was dropped (logged once per run of them)

    def wake(self) -> bool:
        """Send one wake; True if the kernel took it. Never blocks, never raises."""
        try:
            if self._closed:
                raise OSError("the waker is closed")
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._sock.setblocking(False)
            self._sock.sendto(MESSAGE, self._path)
        except OSError as e:  # BlockingIOError: its queue is full, a wake is pending there
            self._count("dropped")
            if not self._failing and not isinstance(e, BlockingIOError):
                self._failing = True
                logs.log(log, logging.INFO, "diameter push wake not delivered; the pusher "
                         "will find the push at its next poll", socket=self._path,
                         error=f"{type(e).__name__}: {e}"[:200])
            return False
        self._failing = False
        self._count("sent")
        return True

    def close(self) -> None:
        self._closed = True
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _count(self, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.diameter_push_wakes.labels(outcome).inc()


class WakeListener:
    """The Diameter process's side: while entered (``with``, inside the running loop),
    each valid datagram on ``path`` sets ``event``. ``path`` None: nothing is bound. A
    socket that cannot be bound is logged and left out (the poll remains)."""

    def __init__(self, path: Path | str | None, event: asyncio.Event,
                 metrics: Metrics | None = None) -> None:
        self._path = None if path is None else str(path)
        self._event = event
        self._metrics = metrics
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def listening(self) -> bool:
        return self._sock is not None

    def __enter__(self) -> WakeListener:
        if self._path is None:
            return self
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            _remove_stale(self._path)
            sock.bind(self._path)
            sock.setblocking(False)
            loop = asyncio.get_running_loop()
            loop.add_reader(sock.fileno(), self._readable)
        except (OSError, NotImplementedError) as e:
            sock.close()
            logs.log(log, logging.WARNING, "diameter push wake socket not bound; pushes "
                     "from other processes wait for the poll", socket=self._path,
                     error=f"{type(e).__name__}: {e}"[:200])
            return self
        self._sock, self._loop = sock, loop
        logs.log(log, logging.INFO, "diameter push wake socket listening", socket=self._path)
        return self

    def __exit__(self, _t: type[BaseException] | None, _e: BaseException | None,
                 _tb: TracebackType | None) -> None:
        if self._sock is None or self._loop is None:
            return
        self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
        self._sock = None
        if self._path is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._path)

    def _readable(self) -> None:
        assert self._sock is not None
        woken = ignored = 0
        for _ in range(DRAIN_MAX):
            try:
                data = self._sock.recv(DATAGRAM_MAX)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break  # nothing more can be read now; the next readiness tries again
            if data == MESSAGE:
                woken += 1
            else:
                ignored += 1
        if woken:
            self._event.set()
        if self._metrics is not None:
            if woken:
                self._metrics.diameter_push_wakes.labels("received").inc(woken)
            if ignored:
                self._metrics.diameter_push_wakes.labels("ignored").inc(ignored)


def _remove_stale(path: str) -> None:
    """A socket file left by an earlier run would make the bind fail; anything else at
    that path is not ours to remove (the bind then fails and says so)."""
    try:
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass
