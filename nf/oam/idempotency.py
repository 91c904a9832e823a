"""``Idempotency-Key`` for the care API's non-idempotent POSTs (purchases, new subscribers,
new groups, joins).

A client that times out and retries must not buy an add-on twice. With the header, the
first request claims the key (one insert on a unique ``_id``, so of concurrent requests
with the same key exactly one runs), runs, and stores its answer; a retry with the same
key and the same request gets that answer again (``Idempotent-Replayed: true``) and
changes nothing. The same key with a different request is a 422. Keys are remembered for
``care.idempotency_retention_s`` (at least 24 h; a TTL index drops them after).

What a retry gets while the first attempt is not finished: 409 with ``Retry-After``. If
the first attempt failed with a server error (5xx), or its process died while it ran, its
effect is uncertain; the key then answers 409 ``IDEMPOTENCY_OUTCOME_UNKNOWN`` instead of
running again, because running again could charge twice. Care checks the balance and
uses a new key.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError
from quart import Blueprint, Response, request

from nf import logs
from nf.clock import utc
from nf.errors import BadRequest, Conflict, InvalidParam, NfError, Unprocessable
from nf.runtime import Role, Runtime, Worker
from nf.sbi.problem import PROBLEM_JSON, problem_body
from nf.store.mongo import money_collection, translate_errors

log = logging.getLogger("nf.care")

COLLECTION = "idempotency_keys"
HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
# A claim older than this with no answer belongs to an attempt that died.
_LEASE_S = 60.0
_KEPT_HEADERS = ("Location",)


def fingerprint(method: str, path: str, body: Any) -> str:
    """What makes two requests "the same": method, path and the body's JSON value."""
    canon = json.dumps([method, path, body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()


class IdempotencyKeys:
    """The store of keys, and the ``Part`` (name ``care``) that owns its TTL index."""

    name = "care"

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._coll = money_collection(rt.db, COLLECTION)
        self._retention = timedelta(seconds=rt.settings.care.idempotency_retention_s)

    def blueprints(self, role: Role) -> list[Blueprint]:
        return []

    def workers(self) -> list[Worker]:
        return []

    async def ensure_indexes(self) -> None:
        async with translate_errors("idempotency indexes"):
            await self._coll.create_index([("expires_at", ASCENDING)], name="expires_at_ttl",
                                          expireAfterSeconds=0)

    async def run(self, scope: str, body: Any,
                  produce: Callable[[], Awaitable[Response]]) -> Response:
        """Answer the current request once per ``Idempotency-Key`` (if it has one)."""
        key = request.headers.get(HEADER)
        if key is None:
            return await produce()
        if not _KEY.match(key):
            raise BadRequest(f"{HEADER} must be 1 to 255 printable ASCII characters",
                             cause="MANDATORY_IE_INCORRECT",
                             invalid_params=[InvalidParam(param=HEADER,
                                                          reason="not a valid key")])
        fp = fingerprint(request.method, request.path, body)
        now = self._rt.clock.now()
        token = uuid.uuid4().hex
        doc_id = f"{scope}\x1f{key}"
        claim = {"_id": doc_id, "fingerprint": fp, "state": "pending", "owner": token,
                 "created_at": now, "lease_until": now + timedelta(seconds=_LEASE_S),
                 "expires_at": now + self._retention}
        async with translate_errors("idempotency claim"):
            try:
                await self._coll.insert_one(claim)
            except DuplicateKeyError:
                existing = await self._coll.find_one({"_id": doc_id})
                if existing is not None:
                    return self._replay(existing, fp, now)
                await self._coll.insert_one(claim)  # expired between the two: claim now
        try:
            resp = await produce()
        except NfError as e:
            if e.status >= 500:
                await self._settle(doc_id, token, {"state": "unknown", "status": e.status})
                raise
            await self._settle(doc_id, token, {
                "state": "done", "status": e.status, "content_type": PROBLEM_JSON,
                "body": json.dumps(problem_body(e, request.path), separators=(",", ":")),
                "headers": {}})
            raise
        except BaseException:
            await self._settle(doc_id, token, {"state": "unknown", "status": 500})
            raise
        if resp.status_code >= 500:
            await self._settle(doc_id, token, {"state": "unknown",
                                               "status": resp.status_code})
            return resp
        data = await resp.get_data(as_text=True)
        await self._settle(doc_id, token, {
            "state": "done", "status": resp.status_code,
            "content_type": resp.content_type or "", "body": data,
            "headers": {h: resp.headers[h] for h in _KEPT_HEADERS if h in resp.headers}})
        return resp

    async def _settle(self, doc_id: str, token: str, fields: dict[str, Any]) -> None:
        try:
            async with translate_errors("idempotency answer"):
                await self._coll.update_one({"_id": doc_id, "owner": token},
                                            {"$set": {**fields, "lease_until": None}})
        except NfError as e:
            # The change itself is done; the key stays pending and answers "unknown" after
            # its lease, never "run again".
            logs.log(log, logging.WARNING, "idempotency answer not stored", error=e.detail)

    def _replay(self, doc: dict[str, Any], fp: str, now: datetime) -> Response:
        if doc.get("fingerprint") != fp:
            raise Unprocessable(f"this {HEADER} was used for a different request; use a "
                                "new key for a new request", cause="IDEMPOTENCY_KEY_REUSED")
        state = doc.get("state")
        if state == "done":
            resp = Response(doc.get("body", ""), status=int(doc["status"]),
                            content_type=doc.get("content_type") or None)
            for h, v in (doc.get("headers") or {}).items():
                resp.headers[h] = v
            resp.headers[REPLAYED] = "true"
            return resp
        lease = doc.get("lease_until")
        if state == "pending" and lease is not None and utc(lease) > now:
            err = Conflict(f"a request with this {HEADER} is still being processed; "
                           "retry shortly", cause="IDEMPOTENCY_KEY_IN_USE")
            err.retry_after_s = 1
            raise err
        raise Conflict(f"the first request with this {HEADER} did not finish (server error "
                       "or restart), so whether it took effect is unknown; check the "
                       "subscriber, then use a new key", cause="IDEMPOTENCY_OUTCOME_UNKNOWN")
