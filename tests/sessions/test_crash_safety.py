"""SIGKILL the billing worker around every provider action of a window's life; after a
restart the ledger and the provider's own records agree: nothing captured twice, no release
forgotten."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.conftest import START
from vidivo.auth.service import GuestPrincipal
from vidivo.calls.ledger import audit, totals
from vidivo.calls.models import LedgerKind
from vidivo.calls.worker import LEASE
from vidivo.payments.sim_models import SimPaymentIntent


def run_worker(settings, data_dir, at, crash: tuple[str, str] | None = None) -> int:
    env = {
        **os.environ,
        "VIDIVO_DATABASE_URL": settings.database_url,
        "VIDIVO_SIGNING_KEY_PATH": str(settings.active_signing_key_path),
        "VIDIVO_DATA_DIR": str(data_dir),
        "VIDIVO_PUBLIC_BASE_URL": settings.public_base_url,
    }
    args = [sys.executable, "-m", "tests.sessions.crash_worker", at.isoformat(), *(crash or ())]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
    if done.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(done.stderr)
    return done.returncode


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize(
    ("action", "end_after"),
    [("hold", 450), ("capture", 450), ("cancel", 240)],
    ids=["renewal-hold", "capture", "cancel"],
)
async def test_a_killed_worker_resumes_without_double_capture_or_lost_release(
    calls, context, clock, settings, tmp_path, action, when, end_after
):
    call = await calls.started()
    await calls.client.post(f"/v1/sessions/{call.session_id}/accept", headers=call.host.headers)
    await context.calls.connected(call.session_id, "host")
    await context.calls.connected(call.session_id, "guest")
    crashed = False

    def work_at(seconds: int) -> None:
        nonlocal crashed
        at = START + timedelta(seconds=seconds)
        if crashed:
            assert run_worker(settings, tmp_path, at) == 0
            return
        crashed = run_worker(settings, tmp_path, at, (action, when)) == -signal.SIGKILL
        if crashed:
            # The restart takes over once the dead worker's lease on the session runs out.
            restart_at = at + LEASE + timedelta(seconds=1)
            assert run_worker(settings, tmp_path, restart_at) == 0

    for moment in (230, 300):
        if moment <= end_after:
            work_at(moment)
    clock.set(START + timedelta(seconds=end_after))
    # The guest hangs up; settling the windows is left to the (crashing) worker.
    await context.calls.end(call.session_id, GuestPrincipal(call.session_id, {}))
    work_at(end_after)
    assert crashed, f"the worker never reached {action}"

    session = await calls.session(call)
    assert session["state"] == "ended"
    expected_total = {450: 2000, 240: 1000}[end_after]
    async with context.session_factory() as db:
        sums = await totals(db, call.session_id)
        assert await audit(db) == []
        intents = list(await db.scalars(select(SimPaymentIntent)))
    assert sums[LedgerKind.CAPTURE] == expected_total
    provider_captured = sum(i.amount_captured for i in intents)
    assert provider_captured == expected_total  # the provider agrees: nothing twice
    assert all(i.status in ("succeeded", "canceled") for i in intents)  # nothing left held
    assert sums[LedgerKind.HOLD] == sum(i.amount for i in intents)
