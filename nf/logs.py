"""Structured JSON logs, one object per line on stderr.

Per-request fields (request id, supi, chargingDataRef, smPolicyId) are bound in a context
variable by the shell and added to every line written while handling that request. Cores
never log: they return events and the shell logs them.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
import uuid
from typing import Any

_bound: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "nf_log_fields", default=None)

# A request id from a peer is echoed and logged only if it is a short plain token (no log or
# header injection); anything else is replaced by a fresh one.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:@-]{1,64}$")


def bind(**fields: Any) -> None:
    """Add fields to every log line written in the current request / task."""
    _bound.set({**(_bound.get() or {}), **fields})


def bound() -> dict[str, Any]:
    """The fields bound in the current context."""
    return dict(_bound.get() or {})


def clear() -> None:
    _bound.set(None)


def start_request(request_id: str) -> contextvars.Token[dict[str, Any] | None]:
    """Bind a fresh set of fields for one request; undo with ``end_request(token)``."""
    return _bound.set({"request_id": request_id})


def end_request(token: contextvars.Token[dict[str, Any] | None]) -> None:
    _bound.reset(token)


def request_id_from(header: str | None) -> str:
    """The peer's ``x-request-id`` if it is acceptable, else a new one."""
    if header is not None and _REQUEST_ID.match(header):
        return header
    return uuid.uuid4().hex[:16]


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        out: dict[str, Any] = {
            "ts": f"{ts}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update(_bound.get() or {})
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            out.update(extra)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, separators=(",", ":"))


def setup(level: str) -> None:
    """Send every logger's records to stderr as JSON lines (idempotent)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def log(logger: logging.Logger, level: int, msg: str, **fields: Any) -> None:
    logger.log(level, msg, extra={"fields": fields})
