"""`POST /v1/test/clock/advance`: move the server's clock and run the work that fell due.

Exists only with `VIDIVO_TEST_CLOCK=1`, which production configuration refuses.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, Field

from vidivo.calls.worker import BillingWorker
from vidivo.core.clock import TestClock
from vidivo.core.deps import AppClock, provided
from vidivo.core.schemas import RequestModel, Timestamp

router = APIRouter(tags=["test clock"])
Worker = Annotated[BillingWorker, provided(BillingWorker)]


class ClockAdvance(RequestModel):
    seconds: int = Field(ge=0, le=30 * 86400)


class ClockNow(BaseModel):
    now: Timestamp
    advanced_sessions: int


@router.post("/v1/test/clock/advance", summary="Move the test clock; due billing work runs")
async def advance_clock(body: ClockAdvance, clock: AppClock, worker: Worker) -> ClockNow:
    assert isinstance(clock, TestClock)
    target = clock.now() + timedelta(seconds=body.seconds)
    advanced = await worker.run_due()
    # Step through every due moment on the way, as real time would, not just the end.
    while (due := await worker.next_due_at()) is not None and due <= target:
        # Work still due at this very moment (a retry, a lease) must not stall the clock.
        step_to = due if due > clock.now() else clock.now() + timedelta(seconds=1)
        clock.set(min(step_to, target))
        advanced += await worker.run_due()
        if clock.now() >= target:
            break
    clock.set(target)
    advanced += await worker.run_due()
    return ClockNow(now=clock.now(), advanced_sessions=advanced)
