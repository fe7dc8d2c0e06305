"""The billing worker: claims sessions whose next action is due and advances them, and
finishes the refunds a provider failure or a crash left pending.

Claims are leases in the database (`lease_owner`, `lease_until`), taken with
`FOR UPDATE SKIP LOCKED` on PostgreSQL, so several workers never advance one session at
once, and a crashed worker's sessions are picked up when its lease runs out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vidivo.calls import metrics, repository
from vidivo.calls.engine import BillingEngine
from vidivo.calls.refund_queue import RefundCarrier, carry_out_refunds, sessions_with_due_refunds
from vidivo.core.clock import Clock
from vidivo.core.db import new_id
from vidivo.core.errors import is_database_outage
from vidivo.core.logs import logged_call_session
from vidivo.payments.provider import PaymentProvider

log = logging.getLogger("vidivo.worker")
# Short, so a crashed worker's sessions are picked up well inside a renewal's lead time.
LEASE = timedelta(seconds=30)
BATCH = 50
# While a pass waits on calls it has running, it looks this often for calls that fell due
# meanwhile: one call stuck in a slow provider does not hold the others up.
LOOK_AGAIN_SECONDS = 0.5
# A call that waited its turn this long after its claim (behind slow provider calls) has its
# lease renewed before it is advanced, so that no other worker claims it halfway through; if
# its lease ran out and another worker claimed it meanwhile, that worker advances it.
RENEW_AFTER = LEASE / 3
# While a call is being advanced, its lease is renewed this often (real seconds): several slow
# provider steps in one advance can outlast a lease.
RENEW_EVERY_SECONDS = RENEW_AFTER.total_seconds()
# A pass advances a call at most once, and each claim leaves out the calls the pass has seen:
# past this many the pass ends (the next one starts after the usual pause between passes),
# so a claim never carries more ids than a statement can take (32,767 with asyncpg).
MOST_PER_PASS = 5000


class BillingWorker:
    def __init__(
        self,
        factory: async_sessionmaker[AsyncSession],
        engine: BillingEngine,
        clock: Clock,
        worker_id: str = "",
        *,
        payments: PaymentProvider,
        concurrency: int = 16,
    ) -> None:
        self._factory = factory
        self._engine = engine
        self._clock = clock
        self._payments = payments
        self.worker_id = worker_id or f"worker-{new_id()}"
        self._concurrency = asyncio.Semaphore(concurrency)
        # Calls a pass holds claimed at once: `concurrency` advancing, or with a concurrency
        # under a batch, one batch with the rest waiting their turn (not long: a lease runs
        # from the claim).
        self._in_hand = max(concurrency, BATCH)

    async def claim_due(self, skip: set[str], limit: int) -> list[str]:
        async with self._factory() as db:
            ids = await repository.claim_due_sessions(
                db,
                self._clock.now(),
                owner=self.worker_id,
                lease=LEASE,
                skip=skip,
                limit=limit,
            )
            await db.commit()
        return ids

    async def _release(self, session_ids: Iterable[str]) -> None:
        """Give back this worker's leases on these calls (those it still holds); a failure is
        logged, and the leases run out on their own."""
        try:
            async with self._factory() as db:
                for session_id in session_ids:
                    await repository.release_lease(db, session_id, self.worker_id)
                await db.commit()
        except Exception:
            log.exception("giving back leases failed; they run out within %s", LEASE)

    async def _renewed(self, session_id: str) -> bool:
        async with self._factory() as db:
            until = self._clock.now() + LEASE
            renewed = await repository.renew_lease(db, session_id, self.worker_id, until)
            await db.commit()
        return renewed

    async def _advance(self, session_id: str, claimed_at: datetime) -> None:
        released = False
        try:
            async with self._concurrency:
                with logged_call_session(session_id):
                    if self._clock.now() - claimed_at >= RENEW_AFTER and not (
                        await self._renewed(session_id)
                    ):
                        log.info("session %s was claimed by another worker meanwhile", session_id)
                        released = True  # the lease is that worker's now
                        return
                    keeper = _LeaseKeeper(lambda: self._renewed(session_id), session_id)
                    try:
                        # The engine gives the lease back with its last plan when it can.
                        released = await self._engine.advance(
                            session_id, lease_owner=self.worker_id
                        )
                    except Exception as exc:
                        if is_database_outage(exc):  # its lease runs out; a later pass goes on
                            log.warning("session %s waits for the database: %s", session_id, exc)
                        else:
                            log.exception("advancing session %s failed; retried later", session_id)
                    finally:
                        keeper.stop()
        finally:  # also for a call cancelled while it waited its turn
            if not released:
                await self._release([session_id])

    async def run_due(self) -> int:
        """Advance every due session once, several at a time, then resume the refunds due;
        the number of sessions advanced or refunded."""
        loop = asyncio.get_running_loop()
        seen: set[str] = set()
        running: set[asyncio.Task[None]] = set()
        more = True  # the last claim was full: more calls may be due now
        next_look = 0.0  # after a claim that was not full, when to look again
        try:
            while True:
                room = min(self._in_hand - len(running), MOST_PER_PASS - len(seen))
                if room <= 0 and not running:
                    break  # this pass has seen its share
                # Claims come in batches, not call by call: a refill waits for half a batch
                # of room; a look for calls due meanwhile takes whatever room there is.
                if more:
                    claim = room >= max(1, BATCH // 2)
                else:
                    claim = room > 0 and loop.time() >= next_look
                if room > 0 and (claim or not running):
                    limit = min(BATCH, room)
                    ids = await self.claim_due(seen, limit)
                    if not ids and not running:
                        break  # a pass ends on a claim that finds nothing due, as ever
                    claimed_at = self._clock.now()
                    seen.update(ids)
                    running.update(asyncio.create_task(self._advance(i, claimed_at)) for i in ids)
                    more = len(ids) == limit
                    next_look = loop.time() + LOOK_AGAIN_SECONDS
                    continue
                # Calls are independent and their provider calls overlap: the next claim
                # comes when room frees up, or (with room) when it is time to look again for
                # calls due meanwhile, never only when this batch's slowest call is done.
                done, running = await asyncio.wait(
                    running,
                    timeout=None if more or not room else max(0.0, next_look - loop.time()),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                for task in done:
                    task.result()
        finally:
            if running:  # the pass was cancelled (shutdown): its calls stop, leases given back
                for task in running:
                    task.cancel()
                await asyncio.gather(*running, return_exceptions=True)
                await self._release(seen)  # a call cancelled before it began holds one too
        metrics.SESSIONS_DUE.set(len(seen))
        return len(seen) + await self.resume_refunds()

    async def resume_refunds(self) -> int:
        """Carry out the pending refunds whose retry is due or that a crash left, with the
        keys they were first sent with; the number of calls whose refunds were taken up."""
        carrier = RefundCarrier(self._factory, self._payments, self._clock, self.worker_id)
        resumed = 0
        for session_id in await sessions_with_due_refunds(self._factory, self._clock.now()):
            with logged_call_session(session_id):
                resumed += await self._resume_refunds_of(carrier, session_id)
        return resumed

    async def _resume_refunds_of(self, carrier: RefundCarrier, session_id: str) -> int:
        try:
            carried = await carry_out_refunds(carrier, session_id)
            self._engine.send_mail()  # the guest's refund notice, if one was settled
            return carried
        except Exception as exc:
            if is_database_outage(exc):
                log.warning("refunds of %s wait for the database: %s", session_id, exc)
            else:
                log.exception("refunds of session %s failed; retried later", session_id)
            return 0

    async def next_due_at(self) -> datetime | None:
        async with self._factory() as db:
            return await repository.next_due_at(db)

    async def run_forever(self, interval_seconds: float = 0.5) -> None:
        log.info("billing worker %s started", self.worker_id)
        while True:
            try:
                await self.run_due()
            except Exception as exc:
                if is_database_outage(exc):  # expected while the database restarts
                    log.warning("billing worker waits for the database: %s", exc)
                else:
                    log.exception("billing worker pass failed")
            await asyncio.sleep(interval_seconds)


class _LeaseKeeper:
    """Renews a call's lease every `RENEW_EVERY_SECONDS` while the call is being advanced, so
    that no other worker claims it halfway through a run of slow provider steps. An advance
    that ends sooner costs one timer. It stops once the lease is no longer this worker's:
    given back by the engine's last plan, or (after a stall past the lease) claimed by
    another worker, whose plans then lose to ours or ours to theirs on the call's version."""

    def __init__(self, renew: Callable[[], Awaitable[bool]], session_id: str) -> None:
        self._renew = renew
        self._session_id = session_id
        self._loop = asyncio.get_running_loop()
        self._timer = self._loop.call_later(RENEW_EVERY_SECONDS, self._due)
        self._renewing: asyncio.Task[None] | None = None

    def _due(self) -> None:
        self._renewing = self._loop.create_task(self._renew_then_wait())

    async def _renew_then_wait(self) -> None:
        try:
            held = await self._renew()
        except Exception as exc:  # the database is away: try again at the next turn
            log.warning("renewing the lease on %s failed: %s", self._session_id, exc)
            held = True
        if held:
            self._timer = self._loop.call_later(RENEW_EVERY_SECONDS, self._due)
        else:
            log.info("session %s is no longer this worker's to keep", self._session_id)

    def stop(self) -> None:
        """No more renewals. One under way may still land: it then extends a lease that is
        still ours, or matches nothing once the lease was given back."""
        self._timer.cancel()
        if self._renewing is not None:
            self._renewing.cancel()
