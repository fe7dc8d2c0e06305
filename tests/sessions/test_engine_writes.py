"""The engine's own reads and writes (Core, not the ORM's unit of work) keep the ORM's rules."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from vidivo.calls import engine_queries, ledger, repository, windows
from vidivo.calls.models import CallSession, LedgerEntry, LedgerKind
from vidivo.core import races
from vidivo.core.errors import Conflict


async def test_a_plan_over_a_call_changed_since_it_was_read_is_refused(calls, context):
    call = await calls.started()
    async with context.session_factory() as db:
        stored = await engine_queries.call_with_windows(db, call.session_id)
        assert stored is not None
        # Someone else's change to the call (here in the same transaction, as a stand-in).
        await db.execute(
            update(CallSession)
            .where(CallSession.id == call.session_id)
            .values(version=CallSession.version + 1)
        )
        stored.session.next_action_at = context.clock.now() + timedelta(seconds=5)
        with pytest.raises(StaleDataError):
            await engine_queries.save(db, stored)


async def test_a_saved_plan_writes_only_what_changed_and_moves_the_version(calls, context):
    call = await calls.started()
    async with context.session_factory() as db:
        stored = await engine_queries.call_with_windows(db, call.session_id)
        assert stored is not None
        version = stored.session.version
        stored.session.next_action_at = context.clock.now() + timedelta(seconds=5)
        stored.windows[0].last_error = "a note"
        await engine_queries.save(db, stored)
        await db.commit()
    async with context.session_factory() as db:
        session = await repository.load_session(db, call.session_id)
        assert session.version == version + 1
        assert session.next_action_at == context.clock.now() + timedelta(seconds=5)
        assert (await repository.windows_of(db, call.session_id))[0].last_error == "a note"


async def test_a_plan_that_changes_nothing_writes_nothing(calls, context):
    call = await calls.started()
    async with context.session_factory() as db:
        stored = await engine_queries.call_with_windows(db, call.session_id)
        assert stored is not None
        version = stored.session.version
        await engine_queries.save(db, stored)
        await db.commit()
    async with context.session_factory() as db:
        assert (await repository.load_session(db, call.session_id)).version == version


async def test_a_plan_is_saved_alone_on_postgresql_only(context, is_postgres):
    assert (engine_queries.DriverPlans.of(context.engine) is not None) is is_postgres


class _AsTheEngine:
    """The call read and saved as the engine's plan does: alone, on asyncpg's own connection,
    on PostgreSQL; in the caller's transaction on SQLite."""

    def __init__(self, context, db) -> None:
        self.plans = engine_queries.DriverPlans.of(context.engine)
        self.alone = self.plans is not None
        self._db = db

    async def read(self, session_id: str) -> tuple[engine_queries.StoredCall, int]:
        """The call and its holds so far."""
        if self.plans is not None:
            stored = await self.plans.call_with_windows(session_id)
        else:
            stored = await engine_queries.call_with_windows(self._db, session_id)
        assert stored is not None
        return stored, (await ledger.totals(self._db, session_id))[LedgerKind.HOLD]

    async def save(self, stored: engine_queries.StoredCall) -> None:
        if self.plans is not None:
            await self.plans.save(stored)
        else:
            await engine_queries.save(self._db, stored)


async def _meanwhile(context, db, alone: bool, change) -> None:
    """Someone else's change, committed while the plan was made (with the plan saved alone);
    otherwise a stand-in in the plan's own transaction (SQLite has one writer)."""
    if alone:
        async with context.session_factory() as other:
            await other.execute(change)
            await other.commit()
    else:
        await db.execute(change)


async def _plan_of_every_kind(context, stored: engine_queries.StoredCall) -> None:
    """A plan that changes the call, changes a window, adds a window and writes the ledger."""
    now = context.clock.now()
    stored.session.next_action_at = now + timedelta(seconds=5)
    stored.windows[0].last_error = "a note"
    stored.windows.append(windows.next_window(stored.windows[0], 10, now))
    stored.ledger.append(
        ledger.entry(
            session=stored.session,
            window_number=1,
            kind=LedgerKind.HOLD,
            amount_cents=123,
            provider_ref="pi_test",
            idempotency_key=f"test:{stored.session.id}",
            at=now,
        )
    )


async def _nothing_of_the_plan_saved(context, session_id: str, *, holds: int) -> None:
    """None of `_plan_of_every_kind`'s writes is stored: one window, unchanged, and the
    holds the ledger had."""
    async with context.session_factory() as db:
        saved = await repository.windows_of(db, session_id)
        assert [w.number for w in saved] == [1]
        assert saved[0].last_error is None
        assert (await ledger.totals(db, session_id))[LedgerKind.HOLD] == holds


async def test_a_plan_saved_alone_writes_the_call_its_windows_and_ledger_at_once(calls, context):
    call = await calls.started()
    async with context.session_factory() as db:
        engine = _AsTheEngine(context, db)
        stored, holds_before = await engine.read(call.session_id)
        version = stored.session.version
        await _plan_of_every_kind(context, stored)
        await engine.save(stored)
        await db.commit()
    async with context.session_factory() as db:
        session = await repository.load_session(db, call.session_id)
        assert session.version == version + 1
        assert session.next_action_at == context.clock.now() + timedelta(seconds=5)
        saved = await repository.windows_of(db, call.session_id)
        assert [w.number for w in saved] == [1, 2]
        assert saved[0].last_error == "a note"
        # The new window's columns it was not given took their defaults.
        assert (saved[1].held_cents, saved[1].captured_cents, saved[1].hold_attempts) == (0, 0, 0)
        assert (await ledger.totals(db, call.session_id))[LedgerKind.HOLD] == holds_before + 123


async def test_a_plan_over_a_call_changed_since_it_was_read_writes_nothing_at_all(calls, context):
    call = await calls.started()
    async with context.session_factory() as db:
        engine = _AsTheEngine(context, db)
        stored, holds_before = await engine.read(call.session_id)
        moved = (
            update(CallSession)
            .where(CallSession.id == call.session_id)
            .values(version=CallSession.version + 1)
        )
        await _meanwhile(context, db, engine.alone, moved)
        await _plan_of_every_kind(context, stored)
        with pytest.raises(StaleDataError):
            await engine.save(stored)
        # Nothing is committed (alone, there is no transaction to roll back).
    await _nothing_of_the_plan_saved(context, call.session_id, holds=holds_before)


async def test_a_plan_recording_an_outcome_recorded_meanwhile_writes_nothing(calls, context):
    # Another process recorded this very outcome first (its ledger key is unique): the plan
    # fails as a whole with the error the engine takes as "plan again", never half-saved.
    call = await calls.started()
    async with context.session_factory() as db:
        engine = _AsTheEngine(context, db)
        stored, holds_before = await engine.read(call.session_id)
        await _plan_of_every_kind(context, stored)
        recorded = ledger.entry(
            session=stored.session, window_number=1, kind=LedgerKind.HOLD, amount_cents=123,
            provider_ref="pi_test", idempotency_key=f"test:{stored.session.id}",
            at=context.clock.now(),
        )  # fmt: skip
        assert recorded.idempotency_key == stored.ledger[0].idempotency_key
        columns = {c.key: getattr(recorded, c.key) for c in LedgerEntry.__table__.columns}
        await _meanwhile(context, db, engine.alone, insert(LedgerEntry).values(columns))
        with pytest.raises(IntegrityError):
            await engine.save(stored)
    # The other process's entry stays where it committed apart (alone); SQLite's stand-in
    # shared the plan's transaction and went with it.
    holds = holds_before + (123 if engine.alone else 0)
    await _nothing_of_the_plan_saved(context, call.session_id, holds=holds)


async def test_a_new_row_missing_a_required_value_is_a_loud_error_not_a_lost_race(calls, context):
    # In one statement a missing id would fail like a lost race and be retried in silence.
    call = await calls.started()
    async with context.session_factory() as db:
        engine = _AsTheEngine(context, db)
        stored, holds_before = await engine.read(call.session_id)
        await _plan_of_every_kind(context, stored)
        del stored.ledger[0].__dict__["id"]
        with pytest.raises(ValueError, match="ledger_entries row without id"):
            engine_queries.one_statement_plan(stored)
        if engine.plans is not None:
            with pytest.raises(ValueError, match="ledger_entries row without id"):
                await engine.plans.save(stored)
    async with context.session_factory() as db:
        assert (await ledger.totals(db, call.session_id))[LedgerKind.HOLD] == holds_before


async def _change_raced(context, session_id: str, raced: int, attempts: list[int]) -> None:
    """A change to the guest's name through the calls service, whose first `raced` attempts
    meet the engine midway: its plan lands between the change's read and its first flush (a
    query inside the change flushes). Each attempt is appended to `attempts`."""

    async def change(db, session: CallSession, now) -> None:
        attempts.append(len(attempts) + 1)
        session.guest_name = "Renamed"
        if len(attempts) <= raced:
            async with context.session_factory() as engine_meanwhile:
                await engine_meanwhile.execute(
                    update(CallSession)
                    .where(CallSession.id == session.id)
                    .values(version=CallSession.version + 1)
                )
                await engine_meanwhile.commit()
        await repository.windows_of(db, session.id)

    await context.calls._with_retry(session_id, change)


async def _guest_name(context, session_id: str) -> str:
    async with context.session_factory() as db:
        return (await repository.load_session(db, session_id)).guest_name


async def test_an_api_change_that_meets_the_engine_midway_is_tried_again(calls, context):
    # Made again on the call as it is now, not a 500.
    call = await calls.started()
    attempts: list[int] = []
    await _change_raced(context, call.session_id, raced=1, attempts=attempts)
    assert len(attempts) == 2
    assert await _guest_name(context, call.session_id) == "Renamed"


async def test_an_api_change_raced_every_time_answers_try_again_and_writes_nothing(calls, context):
    # A call that never settles (a stuck worker replanning it) must not keep the request
    # looping, nor answer 500: five tries, then 409 conflict, and nothing of it is kept.
    call = await calls.started()
    before = await _guest_name(context, call.session_id)
    attempts: list[int] = []
    with pytest.raises(Conflict, match="changed too often") as refused:
        await _change_raced(context, call.session_id, raced=races.ATTEMPTS, attempts=attempts)
    assert refused.value.status == 409
    assert len(attempts) == races.ATTEMPTS
    assert await _guest_name(context, call.session_id) == before != "Renamed"


async def _claimed_by(context, owner: str) -> None:
    """The worker `owner` leases every call (as its pass would, once each is due)."""
    async with context.session_factory() as db:
        await repository.claim_due_sessions(
            db, context.clock.now() + timedelta(days=1), owner=owner,
            lease=timedelta(seconds=30), skip=set(), limit=100,
        )  # fmt: skip
        await db.commit()


@pytest.mark.parametrize("taken_over", [False, True], ids=["still-held", "taken-over"])
async def test_a_plan_gives_back_only_a_lease_its_worker_still_holds(calls, context, taken_over):
    # Taken over: the worker's lease ran out and another worker claimed the call between the
    # plan's read and its save (a claim leaves the version alone). The plan must not free
    # the other worker's lease, or a third could advance the call beside it.
    call = await calls.started()
    now = context.clock.now()
    await _claimed_by(context, "worker-a")
    async with context.session_factory() as db:
        engine = _AsTheEngine(context, db)
        stored, _ = await engine.read(call.session_id)
        assert stored.session.lease_owner == "worker-a"
        if taken_over:
            await _meanwhile(
                context,
                db,
                engine.alone,
                update(CallSession)
                .where(CallSession.id == call.session_id)
                .values(lease_owner="worker-b", lease_until=now + timedelta(seconds=30)),
            )
        stored.session.next_action_at = now + timedelta(seconds=5)
        assert engine_queries.lease_release_folded(stored, "worker-a")
        if taken_over:
            with pytest.raises(StaleDataError):  # the engine plans again from what is stored
                await engine.save(stored)
        else:
            await engine.save(stored)
        await db.commit()
    async with context.session_factory() as db:
        session = await repository.load_session(db, call.session_id)
    if taken_over:
        assert session.lease_owner == "worker-b"
        assert session.next_action_at != now + timedelta(seconds=5)
    else:
        assert (session.lease_owner, session.lease_until) == (None, None)
        assert session.next_action_at == now + timedelta(seconds=5)
