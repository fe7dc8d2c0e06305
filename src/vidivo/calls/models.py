from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from vidivo.core.db import Base, UTCDateTime, new_id


class SessionState(StrEnum):
    PENDING_PAYMENT = "pending_payment"
    WAITING_FOR_HOST = "waiting_for_host"
    LIVE = "live"
    PAUSED = "paused"
    ENDING = "ending"  # the call is over; its windows are being settled
    ENDED = "ended"
    DECLINED = "declined"
    EXPIRED = "expired"


FINAL_STATES = {SessionState.ENDED, SessionState.DECLINED, SessionState.EXPIRED}


class CallSession(Base):
    __tablename__ = "call_sessions"
    __table_args__ = (
        Index("ix_call_sessions_host_id_id", "host_id", "id"),
        Index("ix_call_sessions_next_action_at", "next_action_at"),
        # The open calls (few) counted by state for the metrics; ended ones are most rows.
        Index("ix_call_sessions_state", "state"),
    )

    id: Mapped[str] = mapped_column(String(26), primary_key=True, default=new_id)
    link_id: Mapped[str] = mapped_column(ForeignKey("links.id"), index=True)
    host_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    state: Mapped[str] = mapped_column(String(20))
    end_reason: Mapped[str | None] = mapped_column(String(40))

    guest_name: Mapped[str] = mapped_column(String(80))
    guest_email: Mapped[str] = mapped_column(String(320))
    customer_id: Mapped[str | None] = mapped_column(String(64))
    payment_method_id: Mapped[str] = mapped_column(String(80))
    # The card's network and last four digits, as the provider told them (for the receipt).
    card_brand: Mapped[str | None] = mapped_column(String(20))
    card_last4: Mapped[str | None] = mapped_column(String(4))
    destination_account_id: Mapped[str] = mapped_column(String(64))

    # The call's terms (`CallTerms`), frozen when it starts: editing or deleting the link, or
    # changing a setting, never changes what a running call costs or how it is metered.
    rate_cents: Mapped[int] = mapped_column(Integer)
    window_minutes: Mapped[int] = mapped_column(Integer)
    fee_basis_points: Mapped[int] = mapped_column(Integer)
    max_minutes: Mapped[int | None] = mapped_column(Integer)
    reconnect_grace_seconds: Mapped[int] = mapped_column(Integer, default=60)
    currency: Mapped[str] = mapped_column(String(3), default="usd")

    # Whether this call took one of its link's uses (given back if it never happens).
    use_consumed: Mapped[bool] = mapped_column(Boolean, default=False)
    host_accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    host_connections: Mapped[int] = mapped_column(Integer, default=0)
    guest_connections: Mapped[int] = mapped_column(Integer, default=0)
    went_live_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The meter (`calls.meter.Meter`), in milliseconds: time confirmed as billable, the
    # running stretch with both parties present, and a pause's guest-side time, billable
    # only if the call resumes.
    banked_live_ms: Mapped[int] = mapped_column(Integer, default=0)
    live_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    unconfirmed_ms: Mapped[int] = mapped_column(Integer, default=0)
    guest_away_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_requested_by: Mapped[str | None] = mapped_column(String(10))

    # Refunds taken or under way: raised (conditionally) before the provider is called, so
    # concurrent refunds can never promise more than was captured.
    refund_reserved_cents: Mapped[int] = mapped_column(Integer, default=0)
    # Set when the guest's bank opens a dispute on one of the call's charges.
    disputed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    waiting_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the worker next has something to do for this session (NULL: nothing).
    next_action_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A worker's claim on the session while it advances it; an expired lease is free again.
    lease_owner: Mapped[str | None] = mapped_column(String(40))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, default=0)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class WindowState(StrEnum):
    PLANNED = "planned"
    AUTHORIZING = "authorizing"  # hold requested: the provider call may or may not have run
    # The provider made the hold but the card's bank asks the guest to authenticate it
    # (3-D Secure) first: nothing is held yet, the hold is settled by the guest's answer.
    AUTHENTICATING = "authenticating"
    HELD = "held"
    CAPTURING = "capturing"
    CAPTURED = "captured"
    CANCELLING = "cancelling"
    RELEASED = "released"
    DECLINED = "declined"


IN_FLIGHT = {WindowState.AUTHORIZING, WindowState.CAPTURING, WindowState.CANCELLING}
# Windows the call's end must still settle with the provider (capture or cancel).
UNSETTLED = {WindowState.HELD, WindowState.AUTHENTICATING}
COVERING = {WindowState.HELD, WindowState.CAPTURING, WindowState.CAPTURED}


class BillingWindow(Base):
    """One pre-authorized stretch of a call: its hold, and how that hold ended."""

    __tablename__ = "billing_windows"
    __table_args__ = (UniqueConstraint("session_id", "number"),)

    id: Mapped[str] = mapped_column(String(26), primary_key=True, default=new_id)
    session_id: Mapped[str] = mapped_column(ForeignKey("call_sessions.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    # Live minutes [start_minute, start_minute + minutes) of the call.
    start_minute: Mapped[int] = mapped_column(Integer)
    minutes: Mapped[int] = mapped_column(Integer)
    held_cents: Mapped[int] = mapped_column(Integer, default=0)
    captured_cents: Mapped[int] = mapped_column(Integer, default=0)
    fee_cents: Mapped[int] = mapped_column(Integer, default=0)
    # The in-flight provider call (`ProviderAction`, and for a new card its attempt number):
    # both are part of its idempotency key.
    pending_action: Mapped[str | None] = mapped_column(String(40))
    pending_attempt: Mapped[int] = mapped_column(Integer, default=0)
    # Whether the in-flight hold is made with the guest at the keyboard (it may then ask for
    # 3-D Secure). Fixed when the action starts: a replay must send what the first try sent.
    pending_guest_present: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    pending_amount_cents: Mapped[int | None] = mapped_column(Integer)
    hold_attempts: Mapped[int] = mapped_column(Integer, default=0)
    provider_hold_id: Mapped[str | None] = mapped_column(String(64))
    decline_code: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(String(500))
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LedgerKind(StrEnum):
    HOLD = "hold"
    CAPTURE = "capture"
    RELEASE = "release"
    FEE = "fee"
    REFUND = "refund"
    FEE_REFUND = "fee_refund"  # the platform's share handed back with a refund


class LedgerEntry(Base):
    """Append-only: every cent held, captured, released, kept as fee or refunded."""

    __tablename__ = "ledger_entries"

    id: Mapped[str] = mapped_column(String(26), primary_key=True, default=new_id)
    session_id: Mapped[str] = mapped_column(ForeignKey("call_sessions.id"), index=True)
    host_id: Mapped[str] = mapped_column(String(26), index=True)
    window_number: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(10))
    amount_cents: Mapped[int] = mapped_column(Integer)
    provider_ref: Mapped[str | None] = mapped_column(String(64))
    # One entry per provider action: a replayed action cannot be recorded twice.
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class RefundState(StrEnum):
    PENDING = "pending"  # reserved; provider calls under way (a worker finishes them)
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the provider refused: nothing was refunded, the reservation is back


class SessionRefund(Base):
    """A host's refund of a call, in full or part, spread over its captured windows."""

    __tablename__ = "session_refunds"
    __table_args__ = (UniqueConstraint("session_id", "request_key"),)

    id: Mapped[str] = mapped_column(String(26), primary_key=True, default=new_id)
    session_id: Mapped[str] = mapped_column(ForeignKey("call_sessions.id"), index=True)
    request_key: Mapped[str] = mapped_column(String(255))
    amount_cents: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # A pending refund whose provider call failed transiently is retried by the worker then.
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))
