from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from vidivo.db import Base, UTCDateTime, new_id


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
    destination_account_id: Mapped[str] = mapped_column(String(64))

    # Terms copied from the link when the call starts: editing or deleting the link later
    # never changes what a running call costs.
    rate_cents: Mapped[int] = mapped_column(Integer)
    window_minutes: Mapped[int] = mapped_column(Integer)
    fee_basis_points: Mapped[int] = mapped_column(Integer)
    max_minutes: Mapped[int | None] = mapped_column(Integer)

    # Whether this call took one of its link's uses (given back if it never happens).
    use_consumed: Mapped[bool] = mapped_column(Boolean, default=False)
    host_accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    host_connections: Mapped[int] = mapped_column(Integer, default=0)
    guest_connections: Mapped[int] = mapped_column(Integer, default=0)
    went_live_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Live time (milliseconds) is what was banked plus the running stretch since `live_since`.
    banked_live_ms: Mapped[int] = mapped_column(Integer, default=0)
    live_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_requested_by: Mapped[str | None] = mapped_column(String(10))

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
