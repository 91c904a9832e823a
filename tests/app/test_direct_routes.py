"""The direct path (``nf.sbi.direct``) answers the hot SBI operations exactly as the
framework's path does: the same requests, good and bad, sent to an NF with
``server.direct_routes`` on and to one with it off (each on its own database, both from the
same state) get the same statuses, content types and bodies (times and generated ids
aside), and the operation's metrics label is the same."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from pymongo import AsyncMongoClient

from nf.clock import FakeClock
from nf.config import Settings
from nf.sbi.direct import DirectRoutes
from nf.store.mongo import Db, Doc
from tests.chf.harness import CHF_ROOT, Nf, build
from tests.ledger import helpers as h

SUPI = "imsi-001010000000801"
PCF = "/npcf-smpolicycontrol/v1/sm-policies"
# Values that differ between two runs of the same requests, whatever path served them.
_VOLATILE = re.compile(r'"(invocationTimeStamp|[a-zA-Z]*[Tt]ime[a-zA-Z]*)":"[^"]*"')


def _chf(isn: int, used: int | None = None) -> dict[str, Any]:
    mu: dict[str, Any] = {"ratingGroup": 10, "requestedUnit": {}}
    if used is not None:
        mu["usedUnitContainer"] = [{"localSequenceNumber": isn, "totalVolume": used}]
    return {"subscriberIdentifier": SUPI,
            "nfConsumerIdentification": {"nodeFunctionality": "SMF", "nFName": "smf-1",
                                         "nFPLMNID": {"mcc": "001", "mnc": "01"}},
            "invocationTimeStamp": "2026-01-01T00:00:00Z",
            "invocationSequenceNumber": isn, "chargingId": 7, "notifyUri":
                "http://127.0.0.1:9/notify", "multipleUnitUsage": [mu]}


def _policy() -> dict[str, Any]:
    return {"supi": SUPI, "pduSessionId": 5, "dnn": "internet", "pduSessionType": "IPV4",
            "notificationUri": "http://127.0.0.1:9/policy",
            "sliceInfo": {"sst": 1}, "servingNetwork": {"mcc": "001", "mnc": "01"}}


async def _exchanges(nf: Nf) -> list[tuple[str, int, str, str]]:
    """The same conversation, good and bad requests, and what came back."""
    out: list[tuple[str, int, str, str]] = []

    async def send(label: str, path: str, raw: bytes, ctype: str | None = "application/json",
                   ) -> Any:
        headers = {"content-type": ctype} if ctype else {}
        # HTTP/2, as an SMF speaks (the direct path leaves HTTP/1.1 to the framework).
        r = await nf.client.post(path, data=raw, headers=headers, http_version="2")
        body = (await r.get_data()).decode()
        location = r.headers.get("location", "")
        out.append((label, r.status_code, r.headers.get("content-type", ""),
                    _VOLATILE.sub(r'"\1":"…"', body) + location))
        return json.loads(body) if body else None

    await send("create", f"{CHF_ROOT}/chargingdata", json.dumps(_chf(0)).encode())
    session = await nf.db["charging_sessions"].find_one({})
    assert session is not None, out[-1]
    ref = f"{CHF_ROOT}/chargingdata/{session['_id']}"
    for isn in (1, 2):
        await send(f"update {isn}", f"{ref}/update", json.dumps(_chf(isn, 1000)).encode())
    await send("replayed update", f"{ref}/update", json.dumps(_chf(2, 1000)).encode())
    await send("stale update", f"{ref}/update", json.dumps(_chf(1, 1000)).encode())
    await send("not json", f"{ref}/update", b"{nope")
    await send("wrong content type", f"{ref}/update", b"{}", "text/plain")
    await send("no content type", f"{ref}/update", b"{}", None)
    # Refused while its body is read (no content-length to refuse it earlier): answered
    # as soon as the body is in, not when the body deadline (a minute here) runs out.
    t0 = time.monotonic()
    await send("too large", f"{ref}/update", b"{" + b" " * 70_000 + b"}")
    assert time.monotonic() - t0 < 30
    await send("wrong shape", f"{ref}/update", json.dumps({"invocationSequenceNumber":
                                                           "x"}).encode())
    await send("unknown session", f"{CHF_ROOT}/chargingdata/nope/update",
               json.dumps(_chf(3, 0)).encode())
    await send("release", f"{ref}/release", json.dumps(_chf(3, 500)).encode())
    await send("policy create", PCF, json.dumps(_policy()).encode())
    policy = await nf.db["sm_policies"].find_one({})
    assert policy is not None, out[-1]
    pid = str(policy["_id"])
    await send("policy update", f"{PCF}/{pid}/update", b"{}")
    await send("policy delete, no body", f"{PCF}/{pid}/delete", b"", None)
    await send("policy delete again", f"{PCF}/{pid}/delete", b"", None)
    return out


async def _run(settings: Settings, db: Db, clock: FakeClock, direct: bool
               ) -> tuple[list[tuple[str, int, str, str]], dict[str, float]]:
    srv = settings.server.model_copy(update={"direct_routes": direct, "body_timeout_s": 60})
    gen: AsyncIterator[Nf] = build(settings.model_copy(update={"server": srv}), db, clock)
    async with aclosing(gen):
        nf = await gen.__anext__()
        inner = nf.app.extensions["nf.guard"].app
        assert isinstance(inner, DirectRoutes) is direct
        await h.unlimited(nf.ledger, clock.now(), SUPI, "orbit", "orbit-unlimited")
        got = await _exchanges(nf)
        counts = {s.labels["operation"] + " " + s.labels["status"]: s.value
                  for m in nf.rt.metrics.requests.collect() for s in m.samples
                  if s.name.endswith("_total")}
    return got, counts


async def test_the_direct_path_answers_as_the_framework_does(
        settings: Settings, db: Db, mongo: AsyncMongoClient[Doc], clock: FakeClock) -> None:
    other = mongo[db.name + "_q"]
    try:
        direct, direct_counts = await _run(settings, db, clock, True)
        framework, framework_counts = await _run(settings, other, FakeClock(clock.now()),
                                                 False)
    finally:
        await mongo.drop_database(other.name)
    assert [d[0] for d in direct] == [f[0] for f in framework]
    for d, f in zip(direct, framework, strict=True):
        assert d == f, (d, f)
    # Good and bad requests both happened, and were counted under the same operations.
    statuses = {s for _, s, _, _ in direct}
    assert {200, 201, 204, 400, 404, 413, 415} <= statuses, statuses
    assert direct_counts == framework_counts
    assert any(k.startswith("chf.update ") for k in direct_counts)
