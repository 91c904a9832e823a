"""What the console reads beyond the ledger's public methods: the subscriber behind a
GPSI, live charging sessions and SM policies, EDRs, the audit trail, the overview."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING

from nf.ledger.effects import WALLETS
from nf.runtime import Runtime
from nf.store.mongo import Doc, translate_errors

AUDIT = "console_audit"
EDRS = "edrs"
CHARGING = "charging_sessions"
POLICIES = "sm_policies"
OUTBOX = "outbox"
# Bounds on what one page reads.
MAX_SESSIONS = 50
MAX_USAGE_EDRS = 20_000
MAX_EDR_COUNT = 10_000  # "and more than ... older events" past this
RATE_WINDOW_S = 60
OVERVIEW_CACHE_S = 10.0


class ConsoleData:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.db = rt.db

    async def ensure_indexes(self) -> None:
        async with translate_errors("console index creation"):
            await self.db[AUDIT].create_index([("supi", ASCENDING), ("at", DESCENDING)],
                                              name="supi_at")
            await self.db[AUDIT].create_index([("at", DESCENDING)], name="at")
            # The search by MSISDN uses the ledger's index on members.gpsi.

    async def supi_of_gpsi(self, gpsi: str) -> str | None:
        async with translate_errors("console lookup"):
            d = await self.db[WALLETS].find_one({"members.gpsi": gpsi},
                                                {"members.supi": 1, "members.gpsi": 1})
        if d is None:
            return None
        for m in d.get("members", []):
            if m.get("gpsi") == gpsi:
                return str(m["supi"])
        return None

    async def charging_sessions(self, supi: str) -> list[Doc]:
        async with translate_errors("console read"):
            return await self.db[CHARGING].find(
                {"supi": supi, "status": "open"},
                {"supi": 1, "host_network": 1, "serving_plmn": 1, "roaming": 1,
                 "created_at": 1, "updated_at": 1, "rgs": 1, "isn": 1, "status": 1,
                 "expires_at": 1}).limit(MAX_SESSIONS).to_list(None)

    async def policies(self, supi: str) -> list[Doc]:
        async with translate_errors("console read"):
            return await self.db[POLICIES].find(
                {"supi": supi, "ended": {"$exists": False}},
                {"hostNetwork": 1, "servingPlmn": 1, "roaming": 1, "speed": 1, "reason": 1,
                 "pduSessionId": 1, "createdAt": 1, "updatedAt": 1}
            ).limit(MAX_SESSIONS).to_list(None)

    async def recent_edrs(self, supi: str, limit: int) -> list[Doc]:
        async with translate_errors("console read"):
            return await self.db[EDRS].find({"supi": supi}).sort(
                "time", DESCENDING).limit(limit).to_list(None)

    async def count_edrs(self, supi: str, at_most: int) -> int:
        """How many EDRs ``supi`` has, counting no further than ``at_most``."""
        async with translate_errors("console read"):
            return int(await self.db[EDRS].count_documents({"supi": supi}, limit=at_most))

    async def usage_per_day(self, supi: str, now: datetime, days: int = 30
                            ) -> dict[str, tuple[int, int]]:
        """Bytes per day from the charging EDRs: (full speed, throttled)."""
        since = now - timedelta(days=days)
        out: dict[str, list[int]] = {}
        async with translate_errors("console read"):
            cursor = self.db[EDRS].find(
                {"supi": supi, "kind": "charging", "time": {"$gte": since}},
                {"day": 1, "units.used_total": 1, "units.throttled": 1}
            ).limit(MAX_USAGE_EDRS)
            async for d in cursor:
                slot = out.setdefault(str(d.get("day")), [0, 0])
                for u in d.get("units") or []:
                    slot[1 if u.get("throttled") else 0] += int(u.get("used_total") or 0)
        return {k: (v[0], v[1]) for k, v in out.items()}

    async def audit(self, key_id: str, brand: str, action: str, supi: str,
                    detail: dict[str, Any], now: datetime) -> None:
        async with translate_errors("console audit"):
            await self.db[AUDIT].insert_one({"key_id": key_id, "scope": brand,
                                             "action": action, "supi": supi,
                                             "detail": detail, "at": now})

    async def audit_of(self, supi: str, limit: int = 20) -> list[Doc]:
        async with translate_errors("console read"):
            return await self.db[AUDIT].find({"supi": supi}).sort(
                "at", DESCENDING).limit(limit).to_list(None)

    async def overview(self, brands: list[str], networks: list[str], now: datetime
                       ) -> tuple[list[OverviewRow], int]:
        """Counts per brand and host network: one aggregation per collection (charging
        sessions, SM policies, EDRs of the last minute) and one count of the outbox, however
        many brands and networks there are. Callers still cache the answer
        (``OVERVIEW_CACHE_S``): each aggregation reads every live session."""
        since = now - timedelta(seconds=RATE_WINDOW_S)
        async with translate_errors("console overview"):
            charging = _per_pair(await self._aggregate(CHARGING, [
                {"$match": {"status": "open"}},
                {"$group": {"_id": {"b": "$brand", "n": "$host_network"},
                            "k": {"$sum": 1}}}]))
            # Sessions per pair, and the distinct subscribers with a throttled session per
            # pair (a subscriber with two throttled sessions counts once).
            facets = await self._aggregate(POLICIES, [
                {"$match": {"ended": {"$exists": False}}},
                {"$facet": {
                    "sessions": [{"$group": {"_id": {"b": "$brand", "n": "$hostNetwork"},
                                             "k": {"$sum": 1}}}],
                    "throttled": [
                        {"$match": {"reason": "throttled"}},
                        {"$group": {"_id": {"b": "$brand", "n": "$hostNetwork",
                                            "s": "$supi"}}},
                        {"$group": {"_id": {"b": "$_id.b", "n": "$_id.n"},
                                    "k": {"$sum": 1}}}]}}])
            facet = facets[0] if facets else {}
            policy = _per_pair(facet.get("sessions") or [])
            throttled = _per_pair(facet.get("throttled") or [])
            recent = _per_pair(await self._aggregate(EDRS, [
                {"$match": {"kind": "charging", "time": {"$gte": since}}},
                {"$group": {"_id": {"b": "$brand", "n": "$host_network"},
                            "k": {"$sum": 1}}}]))
            backlog = await self.db[OUTBOX].count_documents({"status": "pending"})
        rows = [OverviewRow(b, n, charging.get((b, n), 0), policy.get((b, n), 0),
                            throttled.get((b, n), 0),
                            round(recent.get((b, n), 0) / RATE_WINDOW_S, 2))
                for b in brands for n in networks]
        return rows, backlog

    async def _aggregate(self, collection: str, pipeline: list[Doc]) -> list[Doc]:
        # Bounded in time by the client's timeoutMS (``mongodb_timeout_ms``).
        cursor = await self.db[collection].aggregate(pipeline)
        return await cursor.to_list(None)


def _per_pair(groups: list[Doc]) -> dict[tuple[str, str], int]:
    """``{"_id": {"b": brand, "n": network}, "k": count}`` rows as a mapping."""
    out: dict[tuple[str, str], int] = {}
    for g in groups:
        key = g.get("_id") or {}
        out[(str(key.get("b")), str(key.get("n")))] = int(g.get("k") or 0)
    return out


@dataclass(frozen=True)
class OverviewRow:
    brand: str
    network: str
    charging_sessions: int
    policy_sessions: int
    throttled_subscribers: int
    charging_rps: float
