"""The database command watch (``nf.store.opwatch``) and the start-up warm-up
(``nf.store.mongo.warm_up``), against the real database."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from pymongo.errors import AutoReconnect, NetworkTimeout, OperationFailure

from nf.clock import FakeClock
from nf.config import Settings
from nf.ledger.part import LedgerPart
from nf.metrics import Metrics
from nf.store.mongo import Db, make_client, warm_up
from nf.store.opwatch import OpWatch, collection_of, failure_kind, filter_of, shape
from nf.wiring import create_app

SUPI = "imsi-001010000000042"


def test_shape_keeps_fields_and_operators_and_drops_values() -> None:
    flt = {"_id": SUPI, "v": 7, "fx.at": {"$lte": 1.5}, "$or": [{"a": "x"}, {"b": None}]}
    assert shape(flt) == {"_id": "str", "v": "int", "fx.at": {"$lte": "float"},
                          "$or": [{"a": "str"}]}
    assert SUPI not in json.dumps(shape(flt))


def test_shape_is_bounded() -> None:
    deep: dict[str, Any] = {"x": 1}
    for _ in range(20):
        deep = {"d": deep}
    assert "…" in json.dumps(shape(deep), ensure_ascii=False)
    wide = {f"k{i}": i for i in range(100)}
    assert len(shape(wide)) == 12


@pytest.mark.parametrize(("name", "command", "coll", "flt"), [
    ("find", {"find": "w", "filter": {"_id": 1}}, "w", {"_id": 1}),
    ("update", {"update": "w", "updates": [{"q": {"a": 1}, "u": {}}]}, "w", {"a": 1}),
    ("delete", {"delete": "w", "deletes": [{"q": {"b": 2}}]}, "w", {"b": 2}),
    ("findAndModify", {"findAndModify": "w", "query": {"c": 3}}, "w", {"c": 3}),
    ("aggregate", {"aggregate": "w", "pipeline": [{"$match": {}}, {"$group": {}}]}, "w",
     ["$match", "$group"]),
    ("getMore", {"getMore": 12, "collection": "w"}, "w", None),
    ("ping", {"ping": 1}, "", None),
])
def test_collection_and_filter_of_each_command(name: str, command: dict[str, Any], coll: str,
                                               flt: Any) -> None:
    assert collection_of(name, command) == coll
    assert filter_of(name, command) == flt


async def test_every_command_is_observed_and_slow_ones_are_logged(
        settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    seen: list[tuple[str, str, float]] = []
    watch = OpWatch(slow_ms=0.001)  # every command is "slow"
    watch.observe = lambda c, coll, s: seen.append((c, coll, s))
    client = make_client(settings, watch)
    try:
        coll = client[settings.mongodb_database]["watched"]
        with caplog.at_level(logging.WARNING, logger="nf.store"):
            await coll.insert_one({"_id": SUPI, "n": 1})
            await coll.update_one({"_id": SUPI}, {"$inc": {"n": 1}})
            assert await coll.find_one({"_id": SUPI, "n": {"$gte": 2}}) is not None
    finally:
        await client.close()
    kinds = [(c, coll) for c, coll, _ in seen]
    for expected in [("insert", "watched"), ("update", "watched"), ("find", "watched")]:
        assert expected in kinds
    assert all(s >= 0 for _, _, s in seen)
    slow = [r for r in caplog.records if r.getMessage() == "slow database operation"]
    finds = [r for r in slow if r.__dict__["fields"]["command"] == "find"]
    assert finds and finds[-1].__dict__["fields"]["filter"] == {
        "_id": "str", "n": {"$gte": "int"}}
    # Values never reach the log: only the shape of the filter.
    assert all(SUPI not in json.dumps(r.__dict__["fields"], default=str) for r in slow)


async def test_a_fast_command_is_counted_but_not_logged(
        settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics()
    watch = OpWatch(slow_ms=60_000)
    watch.observe = metrics.db_operation
    client = make_client(settings, watch)
    try:
        with caplog.at_level(logging.WARNING, logger="nf.store"):
            await client[settings.mongodb_database]["watched"].find_one({"_id": "x"})
    finally:
        await client.close()
    assert not [r for r in caplog.records if r.getMessage() == "slow database operation"]
    text = metrics.render().decode()
    assert 'nf_db_operation_duration_seconds_count{collection="watched",command="find"} 1.0' \
        in text


async def test_warm_up_writes_to_every_collection_and_changes_nothing(db: Db) -> None:
    await db["a_wallets"].insert_many([{"_id": f"w{i}", "n": i} for i in range(50)])
    await db["b_sessions"].insert_one({"_id": "s1"})
    before = {name: [d async for d in db[name].find()] for name in ("a_wallets", "b_sessions")}
    took = await warm_up(db)
    assert set(took) >= {"a_wallets", "b_sessions"}
    assert all(ms >= 0 for ms in took.values())
    after = {name: [d async for d in db[name].find()] for name in ("a_wallets", "b_sessions")}
    assert after == before


@pytest.mark.parametrize("on", [True, False])
async def test_the_watch_can_be_switched_off(settings: Settings, on: bool) -> None:
    """``mongodb_op_watch: false``: the NF's client has no command listener, so no database
    command reaches the histogram (the start's index checks make plenty)."""
    s = settings.model_copy(update={"mongodb_op_watch": on})
    app = create_app(s, role="oam", clock=FakeClock(), parts=lambda rt: [LedgerPart(rt)])
    try:
        async with app.test_app() as ta:
            text = (await (await ta.test_client().get("/metrics")).get_data()).decode()
    finally:
        client = make_client(s)
        await client.drop_database(s.mongodb_database)
        await client.close()
    assert ("nf_db_operation_duration_seconds_count{" in text) is on


async def test_a_failed_command_is_counted_by_command_and_kind(settings: Settings) -> None:
    metrics = Metrics()
    watch = OpWatch(slow_ms=60_000)
    watch.observe = metrics.db_operation
    watch.failure = metrics.db_failure
    client = make_client(settings, watch)
    try:
        with pytest.raises(OperationFailure):
            await client[settings.mongodb_database].command("noSuchCommand")
        await client[settings.mongodb_database]["watched"].find_one({"_id": "x"})
    finally:
        await client.close()
    text = metrics.render().decode()
    assert 'nf_db_errors_total{command="noSuchCommand",kind="other"} 1.0' in text
    errors = [line for line in text.splitlines() if line.startswith("nf_db_errors_total{")]
    assert len(errors) == 1, errors  # the find that succeeded is no error


def test_failure_kinds() -> None:
    assert failure_kind({"codeName": "MaxTimeMSExpired", "code": 50}) == "timeout"
    assert failure_kind({"codeName": "DuplicateKey"}) == "other"
    assert failure_kind(NetworkTimeout("timed out")) == "timeout"
    assert failure_kind(AutoReconnect("connection reset")) == "network"
    assert failure_kind(ValueError("?")) == "other"
