"""A test Part with controllable handlers, used by app tests directly and by end-to-end tests
through ``settings.extra_parts`` (``tests.e2e.probe_part:make``).

SBI routes (under ``/probe``): a JSON entry point parsed with ``nf.sbi.body``, a slow
handler, a handler that blocks until released (app tier only), one that fails, and one that
reports its process id. Its index is created at start and its background worker writes a
``started`` marker, then on ``Runtime.stopping`` waits ``PROBE_FLUSH_S`` and writes a
``flushed`` marker: the database must still be open at that point.
"""

from __future__ import annotations

import asyncio
import os

from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint, Response, jsonify, request

from nf.errors import NotFound
from nf.runtime import Role, Runtime, Worker
from nf.sbi.body import read_model

MARKERS = "probe_markers"


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=40)
    quantity: int = Field(ge=0, le=1000)
    tags: list[str] = Field(default_factory=list, max_length=5)


class ProbePart:
    name = "probe"

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.indexed = False
        self.entered = 0
        self.release = asyncio.Event()
        self.finished = 0

    def blueprints(self, role: Role) -> list[Blueprint]:
        bp = Blueprint(f"probe_{role}", __name__)
        limit = self.rt.settings.server.max_body_bytes

        @bp.post("/probe/items")
        async def create_item() -> tuple[Response, int]:
            item = await read_model(request, Item, limit)
            return jsonify(item.model_dump()), 201

        @bp.get("/probe/items/<item_id>")
        async def get_item(item_id: str) -> Response:
            raise NotFound(f"no item {item_id}")

        @bp.get("/probe/slow")
        async def slow() -> Response:
            seconds = float(request.args.get("s", "1"))
            await asyncio.sleep(seconds)
            return jsonify({"slept_s": seconds, "pid": os.getpid()})

        @bp.get("/probe/block")
        async def block() -> Response:
            self.entered += 1
            await self.release.wait()
            self.finished += 1
            return jsonify({"released": True})

        @bp.get("/probe/boom")
        async def boom() -> Response:
            raise RuntimeError("secret internal detail 0xDEADBEEF")

        @bp.get("/probe/pid")
        async def pid() -> Response:
            return jsonify({"pid": os.getpid(), "indexed": self.indexed})

        return [bp]

    async def ensure_indexes(self) -> None:
        await self.rt.db[MARKERS].create_index([("kind", 1), ("pid", 1)])
        self.indexed = True

    def workers(self) -> list[Worker]:
        return [self._worker]

    async def _worker(self) -> None:
        coll = self.rt.db[MARKERS]
        pid = os.getpid()
        await coll.insert_one({"kind": "started", "pid": pid})
        await self.rt.stopping.wait()
        await asyncio.sleep(float(os.environ.get("PROBE_FLUSH_S", "0.2")))
        await coll.insert_one({"kind": "flushed", "pid": pid})


def make(rt: Runtime) -> ProbePart:
    return ProbePart(rt)
