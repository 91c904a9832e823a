"""The shard key of every collection, in one place, for a sharded MongoDB cluster.

The NF never shards anything itself: the operator runs ``shard_commands`` (or the README's
equivalent) once, before traffic. What the code guarantees, and a test checks by recording
the commands the driver sends during a CHF + PCF flow, is that every read and write made
while answering an SMF carries its collection's shard key, so ``mongos`` sends it to one
shard. The few queries that by design look across shards are listed in ``CROSS_SHARD``,
each with the reason; anything else that does not carry the key is a defect.

A collection that is not listed here stays unsharded (on its database's primary shard):
small, operator-side data such as ``host_networks``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

KeyKind = Literal["hashed", 1]


@dataclass(frozen=True)
class ShardKey:
    fields: tuple[tuple[str, KeyKind], ...]
    why: str

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.fields)

    def spec(self) -> dict[str, KeyKind]:
        return dict(self.fields)


SHARD_KEYS: Mapping[str, ShardKey] = {
    "ledger_wallets": ShardKey(
        (("_id", "hashed"),),
        "Every charge, purchase and balance read addresses one wallet by its id (the "
        "subscriber's SUPI, or the family group's id); hashing spreads sequential IMSI "
        "ranges evenly over the shards, and a charging step stays one single-document "
        "conditional write on one shard."),
    "charging_sessions": ShardKey(
        (("_id", "hashed"),),
        "Create, update and release address the session by its ChargingDataRef, which is "
        "a digest (no order to exploit): hashed _id spreads them and keeps each step on "
        "one shard."),
    "sm_policies": ShardKey(
        (("_id", "hashed"),),
        "Get, update and delete address the association by its smPolicyId (a digest of "
        "SUPI, PDU session and notification URI); the compare-and-set on its decision "
        "version is a single-shard write."),
    "slc_subscriptions": ShardKey(
        (("_id", "hashed"),),
        "Subscriptions are read, changed and ended by their id."),
    "outbox": ShardKey(
        (("_id", "hashed"),),
        "Enqueue (insert or coalescing upsert on a per-resource slot id), claim and "
        "settle address a notification by its id; pending notifications are few and "
        "short-lived, the lookup of due ones is a background sweep."),
    "diameter_sessions": ShardKey(
        (("_id", "hashed"),),
        "An Sy session's entry (and a Gx or Gy one an earlier version opened) is written "
        "and read by its id (application, host network and Session-Id); Gx and Gy do not "
        "use it on their hot path."),
    "edrs": ShardKey(
        (("supi", "hashed"), ("time", 1)),
        "Insert-only at charging rate: hashed SUPI spreads the inserts over every shard "
        "(a key starting with time would send all of them to the last chunk), and time "
        "second keeps one subscriber's records in time order for care and disputes, "
        "which read one subscriber's EDRs for a period from one shard."),
    "fraud_state": ShardKey(
        (("_id", "hashed"),),
        "Fraud rules keep one state document per subscriber (its SUPI is the id), read and "
        "written by id in batches."),
    "fraud_cases": ShardKey(
        (("_id", "hashed"),),
        "Cases are opened, read and resolved by their id (a digest of rule, subscriber "
        "and time); listing them for care is an operator query across shards."),
    "fraud_cursor": ShardKey(
        (("_id", "hashed"),),
        "One document: the EDR reader's leased checkpoint, addressed by id."),
}


@dataclass(frozen=True)
class CrossShard:
    """A query shape that reaches every shard on purpose: its filter's top-level fields."""

    collection: str
    fields: frozenset[str]
    kind: Literal["sweep", "fan-out"]
    why: str


def _shape(collection: str, fields: set[str] | frozenset[str], kind: Literal["sweep", "fan-out"],
           why: str) -> CrossShard:
    return CrossShard(collection, frozenset(fields), kind, why)


CROSS_SHARD: tuple[CrossShard, ...] = (
    _shape("charging_sessions", {"supi", "status"}, "fan-out",
           "Sessions of subscribers whose counters changed (a purchase or a new period "
           "re-authorises them, care blocking aborts them): once per counter change, not "
           "per charging step; each shard answers from its supi_status index."),
    _shape("sm_policies", {"supi", "ended"}, "fan-out",
           "Every live policy of a subscriber whose counters changed (a cap crossed, an "
           "add-on, a boost): once per counter change; each shard answers from by_supi."),
    _shape("slc_subscriptions", {"supi"}, "fan-out",
           "Spending-limit subscriptions of a subscriber whose counters changed; by_supi."),
    _shape("charging_sessions", {"status", "expires_at"}, "sweep",
           "Supervision: open sessions past their validity (status_expires index)."),
    _shape("charging_sessions", {"status", "closed_at"}, "sweep",
           "Purge of closed sessions past retention."),
    _shape("sm_policies", {"recheckAt", "ended"}, "sweep",
           "Revalidation: boosts that end (by_recheck index)."),
    _shape("sm_policies", {"pushOwed", "updatedAt"}, "sweep",
           "Decisions stored but not yet confirmed in the outbox (a process died)."),
    _shape("outbox", {"status", "due_at", "$or", "diameter_peer"}, "sweep",
           "Due notifications not enqueued by this process (retries, a dead process's): "
           "the HTTP sender's (no Diameter peer), or the Diameter pushes to the peers "
           "connected to this process, or to peers connected nowhere (diameter_due)."),
    _shape("outbox", {"status", "sent_at"}, "sweep", "Purge of delivered notifications."),
    _shape("sm_policies", {"client.net", "client.host", "client.state", "ended"}, "fan-out",
           "The Gx associations a Diameter client opened before it restarted (its "
           "Origin-State-Id went up): once per restart and process; by_client index."),
    _shape("charging_sessions", {"client.net", "client.host", "client.state", "status"},
           "fan-out",
           "The Gy sessions a Diameter client opened before it restarted: once per restart "
           "and process; by_client index."),
    _shape("diameter_sessions", {"host", "state", "app", "net"}, "fan-out",
           "The Gx or Sy sessions a client opened before it restarted (its Origin-State-Id "
           "went up): once per restart and process; host_state index."),
    _shape("outbox", {"status"}, "sweep", "The pending count behind outbox_max_pending."),
    _shape("outbox", {"lease_owner"}, "sweep",
           "The documents one batch claim just leased (after a sweep claimed several)."),
    _shape("ledger_wallets", {"due_res"}, "sweep", "Expired reservations (due_res index)."),
    _shape("ledger_wallets", {"due_life"}, "sweep", "Renewals and expiries (due_life)."),
    _shape("ledger_wallets", {"due_cs"}, "sweep",
           "Charging-session notes gone stale (a crash left them; due_cs index)."),
    _shape("ledger_wallets", {"fx"}, "sweep",
           "Pending effects of one kind a dead process left behind (fx.at index)."),
    _shape("charging_sessions", {"fx"}, "sweep",
           "Pending EDRs a dead process left behind (fx.at index)."),
    _shape("edrs", set(), "sweep", "The fraud reader's start: the newest EDR (time index)."),
    _shape("edrs", {"$or"}, "sweep",
           "The fraud reader: EDRs after its checkpoint, in (time, _id) order."),
    _shape("edrs", {"time"}, "sweep",
           "The fraud reader's rescan of a short window for records stored late."),
    _shape("edrs", {"_id"}, "sweep",
           "The fraud reader's read of the late records that rescan found, by their ids "
           "(the ids alone carry no SUPI; rare, and bounded by the rescan's limit)."),
    _shape("fraud_state", {"due"}, "sweep", "Fraud rules' timers (orphan sessions)."),
    _shape("fraud_cases", {"$or", "updated_at"}, "sweep",
           "Mitigations decided but not yet applied or lifted (a process died)."),
    _shape("fraud_cases", {"supi", "status", "applied", "_id"}, "fan-out",
           "Whether another open case holds a subscriber's mitigation; rare (a resolve)."),
)


def targets(key: ShardKey, flt: Mapping[str, Any]) -> bool:
    """Whether a filter pins every field of ``key`` to values (equality or ``$in``), so
    ``mongos`` can route it to the shards that own those values only."""
    for name in key.names:
        if name not in flt:
            return False
        v = flt[name]
        operators = isinstance(v, Mapping) and any(str(k).startswith("$") for k in v)
        if operators and set(v) - {"$eq", "$in"}:
            return False
    return True


def cross_shard(collection: str, flt: Mapping[str, Any]) -> CrossShard | None:
    fields = frozenset(flt)
    return next((c for c in CROSS_SHARD
                 if c.collection == collection and c.fields == fields), None)


def shard_commands(database: str) -> list[dict[str, Any]]:
    """The admin commands that shard this NF's collections (run once, before traffic)."""
    return [{"shardCollection": f"{database}.{name}", "key": key.spec()}
            for name, key in SHARD_KEYS.items()]
