"""The server processes' garbage-collector tuning and event-loop choice (``nf.proc``)."""

from __future__ import annotations

import asyncio
import gc

import pytest
import uvloop

from nf.proc import GC_GEN0_THRESHOLD, loop_factory, tune_gc


def test_auto_and_uvloop_choose_uvloop_and_asyncio_chooses_asyncio_s_own() -> None:
    assert loop_factory("asyncio") is None
    for choice in ("auto", "uvloop"):
        factory = loop_factory(choice)
        assert factory is not None
        loop = factory()
        try:
            assert isinstance(loop, uvloop.Loop)
        finally:
            loop.close()


def test_the_diameter_process_runs_on_the_chosen_loop() -> None:
    factory = loop_factory("auto")

    async def running() -> type[asyncio.AbstractEventLoop]:
        return type(asyncio.get_running_loop())

    with asyncio.Runner(loop_factory=factory) as runner:
        assert runner.run(running()) is uvloop.Loop


def test_tune_gc_freezes_what_exists_and_raises_the_young_threshold() -> None:
    before = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_threshold()[0] == GC_GEN0_THRESHOLD
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


@pytest.mark.parametrize("choice", ["auto", "asyncio"])
def test_a_choice_without_uvloop_installed_falls_back(monkeypatch: pytest.MonkeyPatch,
                                                      choice: str) -> None:
    monkeypatch.setitem(__import__("sys").modules, "uvloop", None)  # import fails
    assert loop_factory(choice) is None
    with pytest.raises(ImportError):
        loop_factory("uvloop")
