"""The engine's own reads and writes (Core, not the ORM's unit of work) keep the ORM's rules."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.orm.exc import StaleDataError

from vidivo.calls import engine_queries, repository
from vidivo.calls.models import CallSession


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
