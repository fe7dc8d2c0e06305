"""The billing engine's metrics: provider calls, declines, money moved, the worker's load.

Amounts are counted from the ledger entries a transaction actually committed, so they
agree with the ledger (a recording retried after a race is counted once).
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vidivo.calls import repository
from vidivo.calls.actions import ProviderAction
from vidivo.calls.models import FINAL_STATES, LedgerEntry, LedgerKind, SessionState
from vidivo.payments.provider import (
    AuthenticationRequired,
    CardDeclined,
    Hold,
    HoldStatus,
    InvalidPaymentRequest,
    PaymentError,
    ProviderRateLimited,
    Refund,
    TransientPaymentError,
)

SESSIONS_DUE = Gauge(
    "vidivo_worker_sessions_due",
    "Sessions whose next billing action was due in this worker's last pass.",
)
HOLD_LATENESS_SECONDS = Histogram(
    "vidivo_billing_hold_lateness_seconds",
    "How long after its due time a renewal's hold was placed.",
    buckets=(0.5, 1, 2, 5, 10, 20, 30, 45, 60, 120, 300),
)
PROVIDER_CALLS = Counter(
    "vidivo_billing_provider_calls",
    "Payment provider calls by action and outcome.",
    ["action", "outcome"],
)
DECLINES = Counter(
    "vidivo_billing_declines",
    "Holds the card's bank declined, by action (hold, hold_fallback, hold_card).",
    ["action"],
)
HELD_CENTS = Counter("vidivo_billing_held_cents", "Cents authorized (held) on guests' cards.")
CAPTURED_CENTS = Counter("vidivo_billing_captured_cents", "Cents captured from holds.")
RELEASED_CENTS = Counter("vidivo_billing_released_cents", "Cents held and then released.")
REFUNDED_CENTS = Counter("vidivo_billing_refunded_cents", "Cents refunded to guests.")
AUDIT_MISMATCHES = Counter(
    "vidivo_billing_audit_mismatches",
    "Ledger audit findings (a call whose captures or releases do not balance).",
)
OPEN_CALLS = Gauge(
    "vidivo_calls_open",
    "Calls not yet over, by state; read from the database at scrape time, so every "
    "instance reports the same deployment-wide figure.",
    ["state"],
)

_OPEN_STATES = [state for state in SessionState if state not in FINAL_STATES]
_AMOUNT_COUNTERS = {
    LedgerKind.HOLD: HELD_CENTS,
    LedgerKind.CAPTURE: CAPTURED_CENTS,
    LedgerKind.RELEASE: RELEASED_CENTS,
    LedgerKind.REFUND: REFUNDED_CENTS,
}
LedgerAmounts = list[tuple[LedgerKind, int]]


def outcome_of(result: Hold | Refund | PaymentError) -> str:
    if isinstance(result, Hold):
        declined = result.status in (HoldStatus.FAILED, HoldStatus.REQUIRES_ACTION)
        return "declined" if declined else "succeeded"
    if isinstance(result, Refund):
        return "succeeded"
    if isinstance(result, CardDeclined | AuthenticationRequired):
        return "declined"
    if isinstance(result, ProviderRateLimited):
        return "rate_limited"
    if isinstance(result, TransientPaymentError):
        return "failed"
    if isinstance(result, InvalidPaymentRequest):
        return "refused"
    return "error"


def count_provider_call(action: str, result: Hold | Refund | PaymentError) -> None:
    outcome = outcome_of(result)
    PROVIDER_CALLS.labels(action, outcome).inc()
    if outcome == "declined" and action in {a.value for a in ProviderAction if a.places_hold}:
        DECLINES.labels(action).inc()


def pending_amounts(db: AsyncSession) -> LedgerAmounts:
    """The ledger entries this unit of work is about to write, read before its commit."""
    return amounts_of(entry for entry in db.new if isinstance(entry, LedgerEntry))


def amounts_of(entries: Iterable[LedgerEntry]) -> LedgerAmounts:
    return [(LedgerKind(entry.kind), entry.amount_cents) for entry in entries]


def count_committed(amounts: Iterable[tuple[LedgerKind, int]]) -> None:
    for kind, cents in amounts:
        counter = _AMOUNT_COUNTERS.get(kind)
        if counter is not None and cents > 0:
            counter.inc(cents)


async def refresh_open_calls(factory: async_sessionmaker[AsyncSession]) -> None:
    async with factory() as db:
        counts = await repository.open_calls_by_state(db, _OPEN_STATES)
    for state in _OPEN_STATES:
        OPEN_CALLS.labels(state.value).set(counts.get(state, 0))
