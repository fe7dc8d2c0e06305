"""A worker pass: every due call once, and no slow call holding up the others."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

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


def _worker(
    context, engine: Any, concurrency: int = 16, clock: TestClock | None = None
) -> BillingWorker:
    """A worker on a stand-in engine (None: one that only claims), by default on a clock a
    day ahead, where every call's next step is due."""
    return BillingWorker(
        context.session_factory,
        engine,
        clock or TestClock(context.clock.now() + timedelta(days=1)),
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


class _DoneEngine:
    """Stands in for the billing engine: a call it advances has nothing due for a year."""

    def __init__(self, context) -> None:
        self._factory = context.session_factory
        self.advanced: list[str] = []

    async def advance(self, session_id: str, *, lease_owner: str | None = None) -> bool:
        async with self._factory() as db:
            call = await repository.load_session(db, session_id)
            call.next_action_at = call.next_action_at + timedelta(days=365)
            await db.commit()
        self.advanced.append(session_id)
        return False  # the worker gives the lease back itself


async def test_a_pass_ends_at_its_share_of_calls_and_the_next_pass_goes_on(
    calls, hosts, context, monkeypatch
):
    # Each claim leaves out the calls its pass has seen: past its share a pass ends, so a
    # claim never carries more ids than a statement can take. The next passes take the rest.
    monkeypatch.setattr(worker_module, "MOST_PER_PASS", 2)
    started = await _due_calls(calls, hosts, 5)
    engine = _DoneEngine(context)
    worker = _worker(context, engine, concurrency=4)  # type: ignore[arg-type]
    assert [await worker.run_due() for _ in range(4)] == [2, 2, 1, 0]
    assert sorted(engine.advanced) == sorted(started)


class _SlowFirstCall:
    """Stands in for the billing engine: the first call takes longer than a lease (the
    worker's clock moves past it), and meanwhile a rival worker, if any, claims what is due.
    Each call's lease is noted as stored when the call gets its turn."""

    def __init__(self, context, clock: TestClock, rival: BillingWorker | None) -> None:
        self._factory = context.session_factory
        self._clock = clock
        self._rival = rival
        self.advanced: list[str] = []
        self.leases: dict[str, tuple[str | None, object]] = {}
        self.rival_claimed: list[str] = []

    async def advance(self, session_id: str, *, lease_owner: str | None = None) -> bool:
        async with self._factory() as db:
            call = await repository.load_session(db, session_id)
            self.leases[session_id] = (call.lease_owner, call.lease_until)
        if not self.advanced:
            self._clock.advance((worker_module.LEASE + timedelta(seconds=1)).total_seconds())
            if self._rival is not None:
                self.rival_claimed = await self._rival.claim_due(set(), 10)
        self.advanced.append(session_id)
        return False  # the worker gives the lease back itself


@pytest.mark.parametrize("taken_over", [False, True], ids=["still-held", "taken-over"])
async def test_a_call_that_waited_out_its_lease_is_advanced_by_one_worker_only(
    calls, hosts, context, taken_over: bool
):
    # A call claimed in a batch waits its turn behind a slow one. If its lease ran out
    # meanwhile and another worker claimed it, that worker advances it and this one leaves
    # it; if nobody did, its lease is renewed before it is advanced, so that nobody can
    # claim it halfway through.
    started = await _due_calls(calls, hosts, 2)
    clock = TestClock(context.clock.now() + timedelta(days=1))
    rival = _worker(context, None, clock=clock)
    engine = _SlowFirstCall(context, clock, rival if taken_over else None)
    worker = _worker(context, engine, concurrency=1, clock=clock)
    await worker.run_due()
    slow = engine.advanced[0]  # whichever of the two the claim gave first
    [waiting] = [session_id for session_id in started if session_id != slow]
    async with context.session_factory() as db:
        stored = await repository.load_session(db, waiting)
    if taken_over:
        assert waiting in engine.rival_claimed  # (the slow one too: its lease ran out)
        assert engine.advanced == [slow]
        assert stored.lease_owner == rival.worker_id
    else:
        assert engine.advanced == [slow, waiting]
        assert engine.leases[waiting] == (
            worker.worker_id,
            clock.now() + worker_module.LEASE,
        )
        assert stored.lease_owner is None


class _SlowProviderSteps:
    """Stands in for the billing engine: one advance whose provider steps together outlast a
    lease (the worker's clock moves past it while they run), with a rival worker trying to
    claim what is due halfway through."""

    def __init__(self, clock: TestClock, rival: BillingWorker) -> None:
        self._clock = clock
        self._rival = rival
        self.rival_claimed: list[str] | None = None

    async def advance(self, session_id: str, *, lease_owner: str | None = None) -> bool:
        for _ in range(3):  # three slow steps, 15 s each: 45 s in all
            self._clock.advance(15)
            await asyncio.sleep(0.2)  # the worker's renewals come every 0.02 s here
        self.rival_claimed = await self._rival.claim_due(set(), 10)
        return False  # the worker gives the lease back itself


async def test_an_advance_that_outlasts_its_lease_keeps_the_call_from_other_workers(
    calls, hosts, context, monkeypatch
):
    monkeypatch.setattr(worker_module, "RENEW_EVERY_SECONDS", 0.02)
    [started] = await _due_calls(calls, hosts, 1)
    clock = TestClock(context.clock.now() + timedelta(days=1))
    rival = _worker(context, None, clock=clock)
    engine = _SlowProviderSteps(clock, rival)
    worker = _worker(context, engine, clock=clock)
    await worker.run_due()
    assert engine.rival_claimed == []  # 45 s into a 30 s lease, the call is still held
    async with context.session_factory() as db:
        stored = await repository.load_session(db, started)
    assert stored.lease_owner is None  # given back once the advance was over
