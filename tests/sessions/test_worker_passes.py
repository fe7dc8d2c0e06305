"""A worker pass: every due call once, and no slow call holding up the others."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from vidivo.calls import repository
from vidivo.calls import worker as worker_module
from vidivo.calls.worker import BillingWorker
from vidivo.core.clock import TestClock


class _HeldEngine:
    """Stands in for the billing engine to control timing: the first call it is asked to
    advance waits until released; every other call is advanced at once."""

    def __init__(self, others: int = 0) -> None:
        self.advanced: list[str] = []
        self.cancelled: list[str] = []
        self.slow: str | None = None
        self.held = asyncio.Event()  # the first call is waiting
        self.release = asyncio.Event()
        self.others = others
        self.others_done = asyncio.Event()  # every other call was advanced

    async def advance(self, session_id: str, *, lease_owner: str | None = None) -> bool:
        if self.slow is None:
            self.slow = session_id
            self.held.set()
            try:
                await self.release.wait()
            except asyncio.CancelledError:
                self.cancelled.append(session_id)
                raise
        self.advanced.append(session_id)
        if len(self.advanced) == self.others:
            self.others_done.set()
        return False  # the worker gives the lease back itself


async def _due_calls(calls, hosts, count: int) -> list[str]:
    host = await hosts.create()
    link = await calls.link(host)
    return [(await calls.started(link=link, host=host)).session_id for _ in range(count)]


def _worker(context, engine: _HeldEngine, concurrency: int) -> BillingWorker:
    return BillingWorker(
        context.session_factory,
        engine,  # type: ignore[arg-type]
        TestClock(context.clock.now() + timedelta(days=1)),  # every call's next step due
        payments=context.payments,
        concurrency=concurrency,
    )


async def test_a_slow_call_does_not_hold_up_the_rest_of_the_pass(
    calls, hosts, context, monkeypatch
):
    monkeypatch.setattr(worker_module, "BATCH", 2)
    started = await _due_calls(calls, hosts, 5)
    engine = _HeldEngine(others=4)
    worker = _worker(context, engine, concurrency=4)
    passing = asyncio.create_task(worker.run_due())
    # The four others are advanced while the first one claimed is still in the provider's
    # hands: claims go on as room frees up, not batch by batch.
    async with asyncio.timeout(10):
        await engine.others_done.wait()
    assert not passing.done()
    engine.release.set()
    assert await passing == 5
    assert sorted(engine.advanced) == sorted(started)
    assert engine.advanced[-1] == engine.slow


async def test_a_call_due_while_a_slow_one_runs_is_taken_up_without_waiting_for_it(
    calls, hosts, context
):
    # One call stuck in a slow provider (a timeout, say) must not make every renewal that
    # falls due meanwhile wait for it.
    await _due_calls(calls, hosts, 1)
    engine = _HeldEngine(others=1)
    passing = asyncio.create_task(_worker(context, engine, concurrency=4).run_due())
    async with asyncio.timeout(10):
        await engine.held.wait()
    meanwhile = await _due_calls(calls, hosts, 1)
    async with asyncio.timeout(10):
        await engine.others_done.wait()
    assert engine.advanced == meanwhile
    assert not passing.done()
    engine.release.set()
    assert await passing == 2


async def test_a_pass_stopped_midway_stops_its_calls_and_gives_their_leases_back(
    calls, hosts, context
):
    # A worker shutting down cancels its pass: no call is left running on its own, and every
    # call it had claimed (advancing, or waiting its turn) is free for the next worker at
    # once, not when its lease runs out.
    started = await _due_calls(calls, hosts, 3)
    engine = _HeldEngine()
    passing = asyncio.create_task(_worker(context, engine, concurrency=1).run_due())
    async with asyncio.timeout(10):
        await engine.held.wait()
    passing.cancel()
    async with asyncio.timeout(10):
        await asyncio.gather(passing, return_exceptions=True)
    assert engine.cancelled == [engine.slow]
    assert engine.advanced == []
    async with context.session_factory() as db:
        for session_id in started:
            assert (await repository.load_session(db, session_id)).lease_owner is None
