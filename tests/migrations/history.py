"""What the release before the calls-core restructure left in its database: calls in every
state, written the way that release wrote them, at schema revision 0001.

Our rows go in with plain SQL against the tables as 0001 made them (reflected from the
database, so a column 0001 did not have cannot slip in). The provider's side is made by the
simulated provider itself under the keys the engine used (`session:{id}:window:{n}:{action}`):
after the upgrade its replays, captures and cancels find what a real provider would hold.
Today's provider writes columns 0008 added to its tables, so it keeps its records in a store
of its own at head while the history is written, and they are then copied in with the
columns 0001 had (what the provider of that release would have left).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import MetaData, Table, select
from sqlalchemy.ext.asyncio import AsyncEngine

from vidivo.auth.passwords import hash_password
from vidivo.calls.terms import CallTerms
from vidivo.core.clock import TestClock
from vidivo.core.db import create_engine, create_session_factory, new_id
from vidivo.payments.provider import CardDeclined, Hold, HoldRequest
from vidivo.payments.simulated import SimulatedProvider

UPGRADE_AT = datetime(2026, 3, 15, 10, 0, 0, tzinfo=UTC)
RATE_CENTS = 200
WINDOW_MINUTES = 5
# The fee setting when these calls started; the upgraded app runs with another one.
FEE_BASIS_POINTS = 1500
# The terms every early call ran under (an old release's fee, rounded half up to the cent).
TERMS = CallTerms(RATE_CENTS, WINDOW_MINUTES, FEE_BASIS_POINTS, None, 60)
HOST_EMAIL = "early-host@example.com"
PASSWORD = "correct horse battery"
Row = tuple[str, dict[str, Any]]


def before(minutes: float = 0, seconds: float = 0) -> datetime:
    return UPGRADE_AT - timedelta(minutes=minutes, seconds=seconds)


def after(minutes: float = 0, seconds: float = 0) -> datetime:
    return UPGRADE_AT + timedelta(minutes=minutes, seconds=seconds)


def provider_key(session_id: str, window: int, action: str) -> str:
    return f"session:{session_id}:window:{window}:{action}"


@dataclass(frozen=True)
class History:
    host_email: str
    # waiting, live, card_retry, paused, ending, ended, refunded: the session ids.
    calls: dict[str, str]
    # The hold `hold_card_2` placed for the card-retry call's window 2, never recorded.
    in_flight_hold_id: str


@dataclass
class _Call:
    id: str
    guest: str
    card: str
    customer_id: str = ""
    rows: list[Row] = field(default_factory=list)


async def write_history(database_url: str, provider_store_url: str) -> History:
    """The history, written into a database migrated to revision 0001 (the provider's
    records made in `provider_store_url`, a database at head, and copied in)."""
    engine = create_engine(database_url)
    provider_engine = create_engine(provider_store_url)
    try:
        metadata = MetaData()
        async with engine.connect() as connection:
            await connection.run_sync(metadata.reflect)
        assert "refund_reserved_cents" not in metadata.tables["call_sessions"].c, "not 0001"
        deployment = _Deployment(engine, metadata.tables, provider_engine)
        await deployment.host()
        card_retry, in_flight_hold = await deployment.card_retry_call()
        calls = {
            "waiting": await deployment.waiting_call(),
            "live": await deployment.live_call(),
            "card_retry": card_retry,
            "paused": await deployment.paused_call(),
            "ending": await deployment.ending_call(),
            "ended": await deployment.ended_call(),
            "refunded": await deployment.refunded_call(),
        }
        await deployment.copy_provider_records()
    finally:
        await engine.dispose()
        await provider_engine.dispose()
    return History(HOST_EMAIL, calls, in_flight_hold.id)


class _Deployment:
    def __init__(self, engine: AsyncEngine, tables: Any, provider_engine: AsyncEngine) -> None:
        self.engine = engine
        self.provider_engine = provider_engine
        self.tables: dict[str, Table] = dict(tables)
        self.clock = TestClock(before(minutes=60 * 24 * 30))
        self.provider = SimulatedProvider(
            create_session_factory(provider_engine), self.clock, "https://vidivo.test"
        )
        self.host_id = new_id()
        self.link_id = new_id()
        self.account_id = ""

    async def copy_provider_records(self) -> None:
        """The provider's rows, with only the columns its tables had at 0001."""
        theirs = MetaData()
        async with self.provider_engine.connect() as connection:
            await connection.run_sync(theirs.reflect)
            rows: list[Row] = []
            for name, table in self.tables.items():
                if name.startswith("sim_"):
                    found = await connection.execute(select(theirs.tables[name]))
                    rows += [
                        (name, {column.name: row[column.name] for column in table.c})
                        for row in found.mappings()
                    ]
        await self.insert(rows)

    async def insert(self, rows: list[Row]) -> None:
        # The provider is never called inside this transaction: on SQLite its own writes
        # would wait on ours.
        async with self.engine.begin() as connection:
            for table, values in rows:
                await connection.execute(self.tables[table].insert().values(**values))

    async def host(self) -> None:
        joined = self.clock.now()
        account = await self.provider.create_connected_account(
            email=HOST_EMAIL,
            host_id=self.host_id,
            idempotency_key=f"host:{self.host_id}:connect-account",
        )
        await self.provider.complete_onboarding(account.account_id)
        self.account_id = account.account_id
        user = {
            "id": self.host_id,
            "email": HOST_EMAIL,
            "password_hash": await hash_password(PASSWORD),
            "display_name": "Early Host",
            "role": "host",
            "email_verified_at": joined,
            "suspended_at": None,
            "created_at": joined,
        }
        payout_account = {
            "host_id": self.host_id,
            "provider": "simulated",
            "account_id": self.account_id,
            "charges_enabled": True,
            "payouts_enabled": True,
            "details_submitted": True,
            "requirements_json": "[]",
            "created_at": joined,
            "updated_at": joined,
        }
        link = {
            "id": self.link_id,
            "short_code": "early-consult",
            "host_id": self.host_id,
            "rate_cents": RATE_CENTS,
            "window_size_minutes": WINDOW_MINUTES,
            "expires_at": None,
            "max_uses": None,
            "use_count": 7,  # one per call below
            "label": "Consultation",
            "scheduled_start": None,
            "scheduled_end": None,
            "is_active": True,
            "deleted_at": None,
            "created_at": joined,
        }
        await self.insert([("users", user), ("payout_accounts", payout_account), ("links", link)])

    # The provider's side, as the engine drove it -------------------------------------

    async def start(self, guest: str, at: datetime, card: str = "pm_card_visa") -> _Call:
        self.clock.set(at)
        call = _Call(new_id(), guest, card)
        call.customer_id = await self.provider.create_customer(
            email=f"{guest}@guests.example",
            name=guest.title(),
            idempotency_key=f"session:{call.id}:customer",
        )
        await self.attach(call, card, at)
        return call

    async def attach(self, call: _Call, card: str, at: datetime) -> None:
        self.clock.set(at)
        await self.provider.attach_payment_method(
            customer_id=call.customer_id,
            payment_method_id=card,
            idempotency_key=f"session:{call.id}:attach:{card}",
        )
        call.card = card

    async def hold(
        self, call: _Call, window: int, action: str, at: datetime, minutes: int = WINDOW_MINUTES
    ) -> Hold | None:
        """The engine's hold request, byte for byte; None if the card refused it."""
        self.clock.set(at)
        request = HoldRequest(
            amount_cents=minutes * RATE_CENTS,
            customer_id=call.customer_id,
            payment_method_id=call.card,
            destination_account_id=self.account_id,
            off_session=not (window == 1 and action == "hold"),
            description=f"Vidivo call {call.id}, window {window}",
            metadata={"session_id": call.id, "window": str(window), "host_id": self.host_id},
        )
        try:
            return await self.provider.place_hold(
                request, idempotency_key=provider_key(call.id, window, action)
            )
        except CardDeclined:
            return None

    async def capture(self, call: _Call, window: int, hold: Hold, cents: int, at: datetime) -> Hold:
        self.clock.set(at)
        return await self.provider.capture_hold(
            hold.id,
            amount_cents=cents,
            application_fee_cents=TERMS.fee_cents(cents),
            idempotency_key=provider_key(call.id, window, "capture"),
        )

    # Our rows, as the engine recorded them -------------------------------------------

    def ledger(
        self,
        call: _Call,
        window: int | None,
        key: str,
        kind: str,
        cents: int,
        ref: str,
        at: datetime,
    ) -> Row:
        return (
            "ledger_entries",
            {
                "id": new_id(),
                "session_id": call.id,
                "host_id": self.host_id,
                "window_number": window,
                "kind": kind,
                "amount_cents": cents,
                "provider_ref": ref,
                "idempotency_key": f"{key}:{kind}",
                "created_at": at,
            },
        )

    def window_row(self, call: _Call, number: int, at: datetime, **fields: Any) -> Row:
        values = {
            "id": new_id(),
            "session_id": call.id,
            "number": number,
            "state": "held",
            "start_minute": (number - 1) * WINDOW_MINUTES,
            "minutes": WINDOW_MINUTES,
            "held_cents": 0,
            "captured_cents": 0,
            "fee_cents": 0,
            "pending_action": None,
            "pending_amount_cents": None,
            "hold_attempts": 0,
            "provider_hold_id": None,
            "decline_code": None,
            "last_error": None,
            "retry_at": None,
            "created_at": at,
            "updated_at": at,
        }
        values.update(fields)
        return ("billing_windows", values)

    def held(self, call: _Call, number: int, hold: Hold, at: datetime) -> None:
        call.rows.append(
            self.window_row(
                call, number, at, held_cents=hold.amount_cents, provider_hold_id=hold.id
            )
        )
        key = provider_key(call.id, number, "hold")
        call.rows.append(self.ledger(call, number, key, "hold", hold.amount_cents, hold.id, at))

    def captured(
        self, call: _Call, number: int, hold: Hold, capture: Hold, held_at: datetime, at: datetime
    ) -> None:
        call.rows.append(
            self.window_row(
                call,
                number,
                held_at,
                state="captured",
                held_cents=hold.amount_cents,
                captured_cents=capture.amount_captured_cents,
                fee_cents=capture.application_fee_cents,
                provider_hold_id=hold.id,
                updated_at=at,
            )
        )
        hold_key = provider_key(call.id, number, "hold")
        call.rows.append(
            self.ledger(call, number, hold_key, "hold", hold.amount_cents, hold.id, held_at)
        )
        key = provider_key(call.id, number, "capture")
        released = hold.amount_cents - capture.amount_captured_cents
        for kind, cents in (
            ("capture", capture.amount_captured_cents),
            ("fee", capture.application_fee_cents),
            ("release", released),
        ):
            call.rows.append(self.ledger(call, number, key, kind, cents, hold.id, at))

    async def write(self, call: _Call, state: str, created_at: datetime, **fields: Any) -> str:
        session = {
            "id": call.id,
            "link_id": self.link_id,
            "host_id": self.host_id,
            "state": state,
            "end_reason": None,
            "guest_name": call.guest.title(),
            "guest_email": f"{call.guest}@guests.example",
            "customer_id": call.customer_id,
            "payment_method_id": call.card,
            "destination_account_id": self.account_id,
            "rate_cents": RATE_CENTS,
            "window_minutes": WINDOW_MINUTES,
            "fee_basis_points": FEE_BASIS_POINTS,
            "max_minutes": None,
            "use_consumed": True,
            "host_accepted_at": None,
            "host_connections": 0,
            "guest_connections": 0,
            "went_live_at": None,
            "banked_live_ms": 0,
            "live_since": None,
            "paused_at": None,
            "end_requested_by": None,
            "disputed_at": None,
            "created_at": created_at,
            "waiting_deadline": None,
            "ended_at": None,
            "next_action_at": None,
            "lease_owner": None,
            "lease_until": None,
            "version": 3,
        }
        session.update(fields)
        await self.insert([("call_sessions", session), *call.rows])
        return call.id

    # The calls -------------------------------------------------------------------------

    async def waiting_call(self) -> str:
        """The guest waits; the host has 8 of the 10 minutes left to join."""
        call = await self.start("wanda", before(minutes=2))
        hold = await self.hold(call, 1, "hold", before(minutes=2))
        assert hold is not None
        self.held(call, 1, hold, before(minutes=2))
        return await self.write(
            call,
            "waiting_for_host",
            before(minutes=2),
            guest_connections=1,
            waiting_deadline=after(minutes=8),
            next_action_at=after(minutes=8),
        )

    async def live_call(self) -> str:
        """Live for 3 minutes; window 2's hold is due 45 s after the upgrade."""
        call = await self.start("liam", before(minutes=4))
        hold = await self.hold(call, 1, "hold", before(minutes=4))
        assert hold is not None
        self.held(call, 1, hold, before(minutes=4))
        return await self.write(
            call,
            "live",
            before(minutes=4),
            host_accepted_at=before(minutes=3),
            went_live_at=before(minutes=3),
            live_since=before(minutes=3),
            host_connections=1,
            guest_connections=1,
            next_action_at=after(seconds=45),
        )

    async def card_retry_call(self) -> tuple[str, Hold]:
        """Live 4:30 with a 10-minute cap. Window 2's hold was refused on the first card and
        on a second; on a third, `hold_card_2` reached the provider and the worker died
        before recording it."""
        call = await self.start("carla", before(minutes=6), card="pm_sim_decline_after_1")
        first = await self.hold(call, 1, "hold", before(minutes=6))
        assert first is not None
        self.held(call, 1, first, before(minutes=6))
        assert await self.hold(call, 2, "hold", before(seconds=45)) is None
        assert await self.hold(call, 2, "hold_fallback", before(seconds=45), minutes=3) is None
        await self.attach(call, "pm_card_chargeDeclined", before(seconds=30))
        assert await self.hold(call, 2, "hold_card_1", before(seconds=30)) is None
        await self.attach(call, "pm_card_visa", before(seconds=10))
        in_flight = await self.hold(call, 2, "hold_card_2", before(seconds=10))
        assert in_flight is not None
        call.rows.append(
            self.window_row(
                call,
                2,
                before(seconds=45),
                state="authorizing",
                pending_action="hold_card_2",
                pending_amount_cents=WINDOW_MINUTES * RATE_CENTS,
                hold_attempts=2,
                last_error="Your card was declined.",
                updated_at=before(seconds=10),
            )
        )
        session_id = await self.write(
            call,
            "live",
            before(minutes=6),
            max_minutes=10,
            host_accepted_at=before(minutes=4, seconds=30),
            went_live_at=before(minutes=4, seconds=30),
            live_since=before(minutes=4, seconds=30),
            host_connections=1,
            guest_connections=1,
            next_action_at=before(seconds=10),
        )
        return session_id, in_flight

    async def paused_call(self) -> str:
        """The guest dropped 30 s ago after 3:30 live; the grace runs out 30 s after."""
        call = await self.start("paul", before(minutes=5))
        hold = await self.hold(call, 1, "hold", before(minutes=5))
        assert hold is not None
        self.held(call, 1, hold, before(minutes=5))
        return await self.write(
            call,
            "paused",
            before(minutes=5),
            host_accepted_at=before(minutes=4),
            went_live_at=before(minutes=4),
            banked_live_ms=210_000,
            paused_at=before(seconds=30),
            host_connections=1,
            next_action_at=after(seconds=30),
        )

    async def ending_call(self) -> str:
        """The guest ended it a minute ago after 2:10 live; window 1 is still to capture."""
        call = await self.start("erin", before(minutes=4))
        hold = await self.hold(call, 1, "hold", before(minutes=4))
        assert hold is not None
        self.held(call, 1, hold, before(minutes=4))
        return await self.write(
            call,
            "ending",
            before(minutes=4),
            end_reason="ended_by_guest",
            end_requested_by="guest",
            host_accepted_at=before(minutes=3, seconds=20),
            went_live_at=before(minutes=3, seconds=10),
            banked_live_ms=130_000,
            next_action_at=before(minutes=1),
        )

    async def ended_call(self) -> str:
        """7:20 live, half an hour ago: window 1 captured in full, window 2 for 3 minutes."""
        call = await self.start("ed", before(minutes=40))
        first = await self.hold(call, 1, "hold", before(minutes=40))
        second = await self.hold(call, 2, "hold", before(minutes=34, seconds=15))
        assert first is not None and second is not None
        first_capture = await self.capture(call, 1, first, 1000, before(minutes=33))
        second_capture = await self.capture(call, 2, second, 600, before(minutes=30, seconds=40))
        self.captured(call, 1, first, first_capture, before(minutes=40), before(minutes=33))
        self.captured(
            call,
            2,
            second,
            second_capture,
            before(minutes=34, seconds=15),
            before(minutes=30, seconds=40),
        )
        return await self.write(
            call,
            "ended",
            before(minutes=40),
            end_reason="ended_by_host",
            end_requested_by="host",
            host_accepted_at=before(minutes=38),
            went_live_at=before(minutes=38),
            banked_live_ms=440_000,
            ended_at=before(minutes=30, seconds=40),
        )

    async def refunded_call(self) -> str:
        """2 minutes live three hours ago ($4.00), since refunded $1.50 and then $1.00."""
        call = await self.start("rita", before(minutes=180))
        hold = await self.hold(call, 1, "hold", before(minutes=180))
        assert hold is not None
        capture = await self.capture(call, 1, hold, 400, before(minutes=176))
        self.captured(call, 1, hold, capture, before(minutes=180), before(minutes=176))
        refunds: list[Row] = []
        for number, (cents, at) in enumerate(
            ((150, before(minutes=120)), (100, before(minutes=60))), start=1
        ):
            refund_id = new_id()
            key = f"session:{call.id}:window:1:refund:{refund_id}"
            self.clock.set(at)
            refund = await self.provider.refund(hold.id, amount_cents=cents, idempotency_key=key)
            fee_back = capture.application_fee_cents * cents // capture.amount_captured_cents
            call.rows.append(self.ledger(call, 1, key, "refund", cents, refund.id, at))
            call.rows.append(self.ledger(call, 1, key, "fee_refund", fee_back, refund.id, at))
            refunds.append(
                (
                    "session_refunds",
                    {
                        "id": refund_id,
                        "session_id": call.id,
                        "request_key": f"refund-{number}",
                        "amount_cents": cents,
                        "reason": "The line kept dropping",
                        "state": "succeeded",
                        "created_at": at,
                    },
                )
            )
        call.rows.extend(refunds)
        return await self.write(
            call,
            "ended",
            before(minutes=180),
            end_reason="ended_by_guest",
            end_requested_by="guest",
            host_accepted_at=before(minutes=179),
            went_live_at=before(minutes=178),
            banked_live_ms=120_000,
            ended_at=before(minutes=176),
        )
