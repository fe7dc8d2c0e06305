"""Many calls, a worker killed by SIGKILL at random points again and again: afterwards every
call settled exactly, the ledger is clean and the provider's own records agree with it."""

from __future__ import annotations

import contextlib
import json
import random
import signal
from collections import defaultdict
from datetime import timedelta

from sqlalchemy import select

from tests.conftest import START
from tests.sessions.test_crash_safety import run_worker
from vidivo.auth.service import GuestPrincipal
from vidivo.calls.ledger import audit, totals
from vidivo.calls.models import LedgerKind
from vidivo.calls.service import InvalidSessionState
from vidivo.calls.worker import LEASE
from vidivo.payments.sim_models import SimPaymentIntent

CALLS = 200
STEP = LEASE + timedelta(seconds=10)  # a dead worker's leases have run out by the next pass


async def test_200_calls_survive_a_worker_killed_at_random_points(
    calls, context, clock, settings, tmp_path, monkeypatch
):
    # Several calls in flight in each pass, so a kill also lands in the middle of the
    # simulated provider's own work for other calls: each of its operations commits with its
    # idempotency record or not at all, so the retry after the restart runs it afresh.
    monkeypatch.setenv("VIDIVO_WORKER_CONCURRENCY", "4")
    chance = random.Random(20261125)
    host = await calls.hosts.create()
    link = await calls.link(host)
    started = []
    for _ in range(CALLS):
        call = await calls.started(link=link, host=host)
        await calls.client.post(f"/v1/sessions/{call.session_id}/accept", headers=host.headers)
        await context.calls.connected(call.session_id, "host")
        await context.calls.connected(call.session_id, "guest")
        started.append(call)
    # Calls end at different moments, between 1 and 12 minutes in.
    ends = {call.session_id: chance.randint(60, 720) for call in started}

    kills, moment = 0, START
    while moment <= START + timedelta(minutes=14):
        moment += STEP
        clock.set(moment)
        for call in started:
            if ends[call.session_id] <= (moment - START).total_seconds():
                ends[call.session_id] = 10**9  # ended once
                # (A call whose paid time ran out while the worker was down ended by itself.)
                with contextlib.suppress(InvalidSessionState):
                    await context.calls.end(call.session_id, GuestPrincipal(call.session_id, {}))
        # A pass that dies is followed by another until one finishes its work.
        seed = chance.randint(0, 10**6)
        while run_worker(settings, tmp_path, moment, ("random", str(seed))) == -signal.SIGKILL:
            kills += 1
            moment += STEP
            seed = chance.randint(0, 10**6)
    assert kills >= 5, "the worker was hardly ever killed"

    async with context.session_factory() as db:
        assert await audit(db) == []
        intents = list(await db.scalars(select(SimPaymentIntent)))
        by_session: dict[str, list[SimPaymentIntent]] = defaultdict(list)
        for intent in intents:
            by_session[json.loads(intent.metadata_json)["session_id"]].append(intent)
        for call in started:
            session = await calls.session(call)
            assert session["state"] == "ended", session
            sums = await totals(db, call.session_id)
            held = by_session[call.session_id]
            # The provider agrees with the ledger: each cent captured once, nothing left held.
            assert sums[LedgerKind.CAPTURE] == sum(i.amount_captured for i in held)
            assert sums[LedgerKind.CAPTURE] == int(session["billed"].replace(".", ""))
            assert all(i.status in ("succeeded", "canceled") for i in held), session
