"""State of the simulated payment provider: a stand-in for Stripe's own records.

Kept in our database so it survives restarts and crashes as Stripe's would, but written in
its own transactions: like an external system, it never rolls back with ours.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vidivo.core.db import Base, UTCDateTime


class SimAccount(Base):
    __tablename__ = "sim_accounts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    charges_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    payouts_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    details_submitted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SimCustomer(Base):
    __tablename__ = "sim_customers"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SimAttachedCard(Base):
    __tablename__ = "sim_attached_cards"

    customer_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    payment_method_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    holds_authorized: Mapped[int] = mapped_column(Integer, default=0)


class SimPaymentIntent(Base):
    __tablename__ = "sim_payment_intents"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    status: Mapped[str] = mapped_column(String(32))
    amount: Mapped[int] = mapped_column(Integer)
    amount_captured: Mapped[int] = mapped_column(Integer, default=0)
    amount_refunded: Mapped[int] = mapped_column(Integer, default=0)
    application_fee: Mapped[int] = mapped_column(Integer, default=0)
    customer_id: Mapped[str] = mapped_column(String(40))
    payment_method_id: Mapped[str] = mapped_column(String(80))
    destination_account_id: Mapped[str] = mapped_column(String(40))
    off_session: Mapped[bool] = mapped_column(Boolean)
    description: Mapped[str] = mapped_column(String(500))
    metadata_json: Mapped[str] = mapped_column(Text, default="{}")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # When the capture moved the money to the host's balance (NULL before 0008: created_at).
    captured_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class SimRefund(Base):
    __tablename__ = "sim_refunds"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    payment_intent_id: Mapped[str] = mapped_column(String(40), index=True)
    amount: Mapped[int] = mapped_column(Integer)
    # The platform fee handed back with it (`refund_application_fee`), to the host's balance.
    application_fee_refunded: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SimIdempotencyKey(Base):
    __tablename__ = "sim_idempotency_keys"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    # NULL while the first request is still running.
    result_json: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
