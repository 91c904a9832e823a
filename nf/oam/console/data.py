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
MAX_THROTTLED_SCAN = 100_000
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
            # Find a subscriber by MSISDN without scanning every wallet.
            await self.db[WALLETS].create_index([("members.gpsi", ASCENDING)],
                                                name="console_gpsi")

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
                {"host_network": 1, "serving_plmn": 1, "roaming": 1, "created_at": 1,
                 "updated_at": 1, "rgs": 1, "isn": 1}).limit(MAX_SESSIONS).to_list(None)

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
        """Counts per brand and host network. Several count queries per pair: callers
        cache the answer (``OVERVIEW_CACHE_S``)."""
        since = now - timedelta(seconds=RATE_WINDOW_S)
        rows: list[OverviewRow] = []
        async with translate_errors("console overview"):
            throttled: dict[tuple[str, str], set[str]] = {}
            cursor = self.db[POLICIES].find(
                {"ended": {"$exists": False}, "reason": "throttled"},
                {"supi": 1, "brand": 1, "hostNetwork": 1}).limit(MAX_THROTTLED_SCAN)
            async for d in cursor:
                throttled.setdefault((str(d.get("brand")), str(d.get("hostNetwork"))),
                                     set()).add(str(d.get("supi")))
            for b in brands:
                for n in networks:
                    charging = await self.db[CHARGING].count_documents(
                        {"status": "open", "brand": b, "host_network": n})
                    policy = await self.db[POLICIES].count_documents(
                        {"ended": {"$exists": False}, "brand": b, "hostNetwork": n})
                    recent = await self.db[EDRS].count_documents(
                        {"kind": "charging", "brand": b, "host_network": n,
                         "time": {"$gte": since}})
                    rows.append(OverviewRow(b, n, charging, policy,
                                            len(throttled.get((b, n), ())),
                                            round(recent / RATE_WINDOW_S, 2)))
            backlog = await self.db[OUTBOX].count_documents({"status": "pending"})
        return rows, backlog


@dataclass(frozen=True)
class OverviewRow:
    brand: str
    network: str
    charging_sessions: int
    policy_sessions: int
    throttled_subscribers: int
    charging_rps: float
