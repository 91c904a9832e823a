"""Watch every database command: a latency histogram by command and collection, a count of
failed commands by command and kind, and a WARNING log line for each command slower than
``mongodb_slow_op_ms``.

The slow-operation line names the command, the collection and the *shape* of its filter
(field names and operators, never values: no SUPI or balance reaches the log), which is
usually enough to see which query lacks an index or which write waits on the journal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from pymongo import monitoring
from pymongo.errors import ConnectionFailure, ExecutionTimeout, NetworkTimeout

from nf import logs

log = logging.getLogger("nf.store")

# The key of a command whose value is its collection: the command's name, except getMore.
_COLLECTION_KEY = {name: name for name in (
    "find", "insert", "update", "delete", "aggregate", "count", "findAndModify", "distinct",
    "createIndexes")} | {"getMore": "collection"}
# Commands in flight remembered for the slow log; beyond it the oldest are forgotten
# (their latency still counts, only the slow line loses its collection).
MAX_TRACKED = 4_096

Observe = Callable[[str, str, float], None]
Failure = Callable[[str, str], None]  # (command, kind)

# Server error names that mean the operation ran out of time.
_TIMEOUT_CODES = frozenset({"MaxTimeMSExpired", "ExceededTimeLimit", "NetworkTimeout"})


def failure_kind(failure: object) -> str:
    """``timeout``, ``network`` or ``other``: a failed command's metric label."""
    if isinstance(failure, Mapping):
        return "timeout" if failure.get("codeName") in _TIMEOUT_CODES else "other"
    if isinstance(failure, NetworkTimeout | ExecutionTimeout):
        return "timeout"
    if isinstance(failure, ConnectionFailure):
        return "network"
    return "other"


def collection_of(name: str, command: Mapping[str, Any]) -> str:
    key = _COLLECTION_KEY.get(name)
    if key is None:
        return ""
    value = command.get(key)
    return value if isinstance(value, str) else ""


def shape(value: Any, depth: int = 0) -> Any:
    """The keys and operators of a filter with every value replaced by its type's name."""
    if depth > 4:
        return "…"
    if isinstance(value, Mapping):
        return {str(k): shape(v, depth + 1) for k, v in list(value.items())[:12]}
    if isinstance(value, list):
        return [shape(value[0], depth + 1)] if value else []
    return type(value).__name__


def filter_of(name: str, command: Mapping[str, Any]) -> Any:
    if name == "find" or name == "count":
        return command.get("filter", command.get("query"))
    if name in ("update", "delete"):
        stmts = command.get("updates" if name == "update" else "deletes") or [{}]
        first = stmts[0] if isinstance(stmts, list) and stmts else {}
        return first.get("q") if isinstance(first, Mapping) else None
    if name == "findAndModify":
        return command.get("query")
    if name == "aggregate":
        stages = command.get("pipeline") or []
        return [next(iter(s), "") for s in stages if isinstance(s, Mapping)]
    return None


_NO_COMMAND: Mapping[str, Any] = {}


class OpWatch(monitoring.CommandListener):
    """Pass one to the client (``event_listeners``); set ``observe`` once metrics exist.

    It runs twice for every database command, so the common path does the least: remember
    the command (a reference, no copy), then one lookup of its collection and one
    observation; the filter's shape is worked out for slow commands only."""

    def __init__(self, slow_ms: float) -> None:
        self.slow_us = int(slow_ms * 1000)
        self.observe: Observe | None = None
        self.failure: Failure | None = None
        self._started: dict[int, Mapping[str, Any]] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        started = self._started
        if len(started) >= MAX_TRACKED:
            del started[next(iter(started))]
        started[event.request_id] = event.command

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self._done(event.request_id, event.command_name, event.duration_micros, None)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        if self.failure is not None:
            self.failure(event.command_name, failure_kind(event.failure))
        self._done(event.request_id, event.command_name, event.duration_micros,
                   type(event.failure).__name__ if not isinstance(event.failure, Mapping)
                   else str(event.failure.get("codeName", "error")))

    def _done(self, request_id: int, name: str, micros: int, failure: str | None) -> None:
        command = self._started.pop(request_id, _NO_COMMAND)
        coll = collection_of(name, command)
        if self.observe is not None:
            self.observe(name, coll, micros / 1e6)
        if micros >= self.slow_us:
            logs.log(log, logging.WARNING, "slow database operation", command=name,
                     collection=coll, ms=round(micros / 1000, 1),
                     filter=shape(filter_of(name, command)), failure=failure)
