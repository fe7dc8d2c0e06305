"""Refunds that cannot race: the amount is reserved on the call before the provider is asked,
a refund that no longer fits is refused with 409, and no refund is left pending for good."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from vidivo.calls.ledger import audit, totals
from vidivo.calls.models import (
    BillingWindow,
    CallSession,
    LedgerEntry,
    LedgerKind,
    RefundState,
    SessionRefund,
)
from vidivo.calls.refund_queue import ABANDONED_AFTER, LEASE, RETRY_DELAY
from vidivo.payments.provider import (
    InvalidPaymentRequest,
    PaymentProvider,
    Refund,
    TransientPaymentError,
)
from vidivo.payments.sim_models import SimRefund

CAPTURED = 2000  # the finished call's two captures: 12.50 and 7.50


@pytest.fixture
async def finished_call(calls):
    """A 7½-minute call at 2.50/min with 5-minute windows: 20.00 captured in two windows."""
    async with calls.live() as (call, _h, _g):
        await calls.advance(450)
        await calls.end(call)
    return call


class SlowRefunds:
    """The external provider, slow to answer refunds: each waits until `answer` is set
    (or 10 s have passed)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.name = inner.name
        self.answer = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def refund(self, hold_id: str, *, amount_cents: int, idempotency_key: str) -> Refund:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.answer.wait(), 10)
        return await self._inner.refund(
            hold_id, amount_cents=amount_cents, idempotency_key=idempotency_key
        )


class FailingRefunds:
    """The external provider answering its next refund with `error`: before doing anything,
    or (`after_refunding`) once the refund is done, as when the answer is lost on the way."""

    def __init__(self, inner: Any, error: BaseException, *, after_refunding: bool = False):
        self._inner = inner
        self.name = inner.name
        self._error: BaseException | None = error
        self._after = after_refunding
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def refund(self, hold_id: str, *, amount_cents: int, idempotency_key: str) -> Refund:
        self.calls += 1
        error, self._error = self._error, None
        if error is not None and not self._after:
            raise error
        result = await self._inner.refund(
            hold_id, amount_cents=amount_cents, idempotency_key=idempotency_key
        )
        if error is not None:
            raise error
        return result


class ProcessDied(Exception):
    """Stands for the API process being killed in the middle of a request."""


async def post_refund(
    client: httpx.AsyncClient, call: Any, key: str, amount: str | None = None
) -> httpx.Response:
    return await client.post(
        f"/v1/sessions/{call.session_id}/refunds",
        headers={**call.host.headers, "Idempotency-Key": key},
        json={} if amount is None else {"amount": amount},
    )


async def refund_race(
    client: httpx.AsyncClient, call: Any, provider: SlowRefunds, amounts: list[str | None], fit: int
) -> list[httpx.Response]:
    """Every refund at once, each with its own key; the provider answers the `fit` refunds
    that got through only once all the others were answered, so every loser really raced."""
    refused = 0

    async def one(n: int, amount: str | None) -> httpx.Response:
        nonlocal refused
        response = await post_refund(client, call, f"race-{n}", amount)
        if response.status_code != 201:
            refused += 1
            if refused == len(amounts) - fit:
                provider.answer.set()
        return response

    return await asyncio.gather(*(one(n, amount) for n, amount in enumerate(amounts)))


async def assert_refunds_balance(context: Any, session_id: str, refunded: int) -> None:
    """No refund pending; the ledger, the reservation and the provider all agree."""
    async with context.session_factory() as db:
        stored = list(
            await db.scalars(select(SessionRefund).where(SessionRefund.session_id == session_id))
        )
        assert [r.state for r in stored if r.state == RefundState.PENDING] == []
        succeeded = sum(r.amount_cents for r in stored if r.state == RefundState.SUCCEEDED)
        assert succeeded == refunded
        assert (await totals(db, session_id))[LedgerKind.REFUND] == refunded
        session = await db.get_one(CallSession, session_id)
        assert session.refund_reserved_cents == refunded
        holds = select(BillingWindow.provider_hold_id).where(BillingWindow.session_id == session_id)
        paid_back = await db.scalar(
            select(func.coalesce(func.sum(SimRefund.amount), 0)).where(
                SimRefund.payment_intent_id.in_(holds)
            )
        )
        assert paid_back == refunded  # what the provider really gave back, once
        assert await audit(db) == []


@pytest.fixture
def swap_provider(app, context, monkeypatch):
    """Put a provider in front of the real one for this test's requests (the routes get it
    from the composition root's registry; the worker keeps the real one)."""

    def swap(provider: PaymentProvider) -> PaymentProvider:
        monkeypatch.setattr(context, "payments", provider)
        monkeypatch.setitem(app.state.provided, PaymentProvider, provider)
        return provider

    return swap


async def test_twenty_concurrent_full_refunds_pay_back_the_capture_once_and_the_rest_get_409(
    client, context, finished_call, swap_provider
):
    provider = SlowRefunds(context.payments)
    swap_provider(provider)
    responses = await refund_race(client, finished_call, provider, [None] * 20, fit=1)
    assert sorted(r.status_code for r in responses) == [201] + [409] * 19
    winner = next(r for r in responses if r.status_code == 201).json()["refund"]
    assert (winner["amount"], winner["state"]) == ("20.00", "succeeded")
    for response in responses:
        if response.status_code == 409:
            error = response.json()["error"]
            assert error["code"] == "refund_exceeds_remaining"
            assert "0.00 is left to refund" in error["message"]
    await assert_refunds_balance(context, finished_call.session_id, CAPTURED)


async def test_twenty_concurrent_partial_refunds_take_what_fits_spread_over_both_captures(
    client, context, finished_call, swap_provider
):
    provider = SlowRefunds(context.payments)
    swap_provider(provider)
    responses = await refund_race(client, finished_call, provider, ["3.00"] * 20, fit=6)
    assert sorted(r.status_code for r in responses) == [201] * 6 + [409] * 14
    assert {r.json()["refund"]["state"] for r in responses if r.status_code == 201} == {"succeeded"}
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 409} == {
        "refund_exceeds_remaining"
    }
    await assert_refunds_balance(context, finished_call.session_id, 1800)
    async with context.session_factory() as db:
        by_window = dict(
            (
                await db.execute(
                    select(LedgerEntry.window_number, func.sum(LedgerEntry.amount_cents))
                    .where(
                        LedgerEntry.session_id == finished_call.session_id,
                        LedgerEntry.kind == LedgerKind.REFUND,
                    )
                    .group_by(LedgerEntry.window_number)
                )
            ).all()
        )
    assert by_window == {2: 750, 1: 1050}  # the latest capture first, neither over-refunded


async def test_concurrent_retries_of_one_refund_are_that_one_refund(
    client, context, finished_call, swap_provider
):
    provider = SlowRefunds(context.payments)
    swap_provider(provider)
    provider.answer.set()
    responses = await asyncio.gather(
        *(post_refund(client, finished_call, "the-same-key") for _ in range(5))
    )
    assert {r.status_code for r in responses} == {201}, [r.text for r in responses]
    assert len({r.json()["refund"]["id"] for r in responses}) == 1
    await assert_refunds_balance(context, finished_call.session_id, CAPTURED)


async def test_a_refund_the_provider_refuses_gives_its_reservation_back_then_one_succeeds(
    client, context, finished_call, swap_provider
):
    provider = FailingRefunds(
        context.payments, InvalidPaymentRequest("This charge cannot be refunded right now.")
    )
    swap_provider(provider)
    refused = await post_refund(client, finished_call, "refused")
    assert refused.status_code == 502, refused.text
    assert refused.json()["error"] == {
        "code": "payment_provider_error",
        "message": "This charge cannot be refunded right now.",
        "details": [],
    }
    async with context.session_factory() as db:
        stored = await db.scalar(
            select(SessionRefund).where(SessionRefund.request_key == "refused")
        )
        assert stored.state == RefundState.FAILED
        session = await db.get_one(CallSession, finished_call.session_id)
        assert session.refund_reserved_cents == 0
    # The same key is the same (failed) refund: nothing is sent again.
    again = await post_refund(client, finished_call, "refused")
    assert again.status_code == 502
    assert provider.calls == 1
    later = await post_refund(client, finished_call, "later")
    assert later.status_code == 201, later.text
    assert (later.json()["refund"]["amount"], later.json()["refund"]["state"]) == (
        "20.00",
        "succeeded",
    )
    await assert_refunds_balance(context, finished_call.session_id, CAPTURED)


async def test_a_refund_whose_answer_was_lost_stays_reserved_and_the_worker_finishes_it_once(
    calls, client, context, finished_call, swap_provider
):
    provider = FailingRefunds(
        context.payments,
        TransientPaymentError("The payment provider timed out."),
        after_refunding=True,
    )
    swap_provider(provider)
    lost = await post_refund(client, finished_call, "lost", "15.00")
    assert lost.status_code == 502, lost.text
    assert lost.json()["error"]["code"] == "payment_provider_error"
    async with context.session_factory() as db:
        stored = await db.scalar(select(SessionRefund).where(SessionRefund.request_key == "lost"))
        assert stored.state == RefundState.PENDING
        assert stored.retry_at is not None and stored.last_error
    # Still reserved: only 5.00 is free while it is under way.
    too_much = await post_refund(client, finished_call, "too-much", "10.00")
    assert too_much.status_code == 409
    assert too_much.json()["error"]["code"] == "refund_exceeds_remaining"
    assert "5.00 is left to refund" in too_much.json()["error"]["message"]
    await calls.advance(int(RETRY_DELAY.total_seconds()) + 1)  # the worker runs what is due
    replay = await post_refund(client, finished_call, "lost", "15.00")
    assert replay.status_code == 201, replay.text
    assert replay.json()["refund"]["state"] == "succeeded"
    await assert_refunds_balance(context, finished_call.session_id, 1500)


async def test_a_refund_behind_one_awaiting_its_retry_answers_202_and_the_worker_does_both(
    calls, client, context, finished_call, swap_provider
):
    provider = FailingRefunds(
        context.payments,
        TransientPaymentError("The payment provider timed out."),
        after_refunding=True,
    )
    swap_provider(provider)
    assert (await post_refund(client, finished_call, "lost", "15.00")).status_code == 502
    queued = await post_refund(client, finished_call, "queued", "5.00")
    assert queued.status_code == 202, queued.text
    assert queued.json()["refund"]["state"] == "pending"
    # Planned now, it would count on the 7.50 capture the first refund may already have taken.
    assert provider.calls == 1
    await calls.advance(int(RETRY_DELAY.total_seconds()) + 1)
    for key, amount in (("lost", "15.00"), ("queued", "5.00")):
        replay = await post_refund(client, finished_call, key, amount)
        assert (replay.status_code, replay.json()["refund"]["state"]) == (201, "succeeded")
    await assert_refunds_balance(context, finished_call.session_id, CAPTURED)


async def test_a_refund_left_pending_by_a_crash_after_the_provider_call_is_finished_once(
    calls, client, context, finished_call, swap_provider
):
    swap_provider(FailingRefunds(context.payments, ProcessDied(), after_refunding=True))
    with pytest.raises(ProcessDied):
        await post_refund(client, finished_call, "crashed")
    assert await context.worker.run_due() == 0  # its carrier's lease is not over yet
    await calls.advance(int(LEASE.total_seconds()) + 1)
    await assert_refunds_balance(context, finished_call.session_id, CAPTURED)


async def test_a_pending_refund_never_started_is_taken_up_by_the_worker_after_a_while(
    calls, context, finished_call
):
    """As a crash between the reservation and the first provider call leaves it."""
    async with context.session_factory() as db:
        db.add(
            SessionRefund(
                session_id=finished_call.session_id,
                request_key="left-by-a-crash",
                amount_cents=500,
                state=RefundState.PENDING,
                created_at=context.clock.now(),
            )
        )
        await db.execute(
            update(CallSession)
            .where(CallSession.id == finished_call.session_id)
            .values(refund_reserved_cents=500, version=CallSession.version + 1)
        )
        await db.commit()
    await context.worker.run_due()  # its own request may still be carrying it out
    async with context.session_factory() as db:
        stored = await db.scalar(
            select(SessionRefund).where(SessionRefund.request_key == "left-by-a-crash")
        )
        assert stored.state == RefundState.PENDING
    await calls.advance(int(ABANDONED_AFTER.total_seconds()) + 1)
    await assert_refunds_balance(context, finished_call.session_id, 500)
