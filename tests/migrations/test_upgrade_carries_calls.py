"""Nothing is lost on upgrade: a database at revision 0001 holding calls in every state is
upgraded, and every call, window, ledger entry and refund is carried forward; the unfinished
calls then run to their end on the terms they started with, and the audit is clean."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, MetaData, select
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from tests.conftest import _recreate_postgres_database, bearer, beside, suite_postgres_url
from tests.migrations.history import (
    FEE_BASIS_POINTS,
    PASSWORD,
    UPGRADE_AT,
    History,
    after,
    before,
    write_history,
)
from vidivo.app import AppContext, create_app
from vidivo.calls import ledger
from vidivo.calls.models import (
    FINAL_STATES,
    BillingWindow,
    CallSession,
    LedgerKind,
    SessionState,
    WindowState,
)
from vidivo.cli import app as cli
from vidivo.core.clock import TestClock
from vidivo.core.config import Settings
from vidivo.core.db import Base, create_engine, dispose
from vidivo.migrate import alembic_config
from vidivo.payments.provider import HoldStatus
from vidivo.payments.sim_models import SimPaymentIntent

# What each call ends up captured, window by window, at $2.00 a minute in 5-minute windows.
CAPTURED = {
    "live": {1: 1000, 2: 200},  # 3:00 live at the upgrade, ended by the host at 5:30
    "card_retry": {1: 1000, 2: 1000},  # runs to its 10-minute cap on the replayed hold
    "paused": {1: 800},  # 3:30 banked when the guest dropped; the grace runs out
    "ending": {1: 600},  # 2:10
    "ended": {1: 1000, 2: 600},  # 7:20, settled before the upgrade
    "refunded": {1: 400},  # 2:00, settled before the upgrade
}


def fresh_database(folder: Path, label: str) -> str:
    """A database of this test's own: a file on SQLite; on PostgreSQL, the suite's database
    name with `label` appended, dropped and created again."""
    suite = suite_postgres_url()
    if not suite:
        return f"sqlite:///{folder / f'{label}.sqlite3'}"
    url = beside(suite, label)
    _recreate_postgres_database(url)
    return url


async def migrate(url: str, revision: str, *, down: bool = False, **options: Any) -> None:
    # Alembic's environment runs its own event loop: not on the test's.
    run = command.downgrade if down else command.upgrade
    await asyncio.to_thread(run, alembic_config(url, **options), revision)


async def provider_store(url: str) -> str:
    """Where the simulated provider keeps its records while the history is written."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        assert parsed.database is not None
        return f"sqlite:///{Path(parsed.database).with_suffix('.provider.sqlite3')}"
    url = beside(url, "provider")
    await asyncio.to_thread(_recreate_postgres_database, url)
    return url


async def history_at_0001(url: str) -> History:
    await migrate(url, "0001")
    store = await provider_store(url)
    await migrate(store, "head")
    return await write_history(url, store)


async def rows_of_every_table(url: str) -> dict[str, list[dict[str, Any]]]:
    engine = create_engine(url)
    try:
        metadata = MetaData()
        async with engine.connect() as connection:
            await connection.run_sync(metadata.reflect)
            tables = {}
            for table in metadata.sorted_tables:
                if table.name != "alembic_version":
                    rows = await connection.execute(select(table).order_by(*table.primary_key))
                    tables[table.name] = [dict(row) for row in rows.mappings()]
            return tables
    finally:
        await engine.dispose()


async def schema_differences(url: str) -> list[Any]:
    def compare(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(compare)
    finally:
        await engine.dispose()


@pytest.fixture
def upgrade_url(tmp_path: Path) -> str:
    return fresh_database(tmp_path, "upgrade")


async def test_upgrade_fills_the_new_columns_from_each_calls_own_history(upgrade_url):
    history = await history_at_0001(upgrade_url)
    await migrate(upgrade_url, "head")

    assert await schema_differences(upgrade_url) == []
    tables = await rows_of_every_table(upgrade_url)
    calls = {row["id"]: row for row in tables["call_sessions"]}
    assert set(calls) == set(history.calls.values())
    for name, session_id in history.calls.items():
        call = calls[session_id]
        assert call["reconnect_grace_seconds"] == 60, name
        assert call["currency"] == "usd", name
        assert (call["unconfirmed_ms"], call["guest_away_since"]) == (0, None), name
        assert call["fee_basis_points"] == FEE_BASIS_POINTS, name
        reserved = 250 if name == "refunded" else 0  # the $1.50 and $1.00 refunds
        assert call["refund_reserved_cents"] == reserved, name
    in_flight = [w for w in tables["billing_windows"] if w["pending_action"] is not None]
    assert [(w["session_id"], w["number"]) for w in in_flight] == [(history.calls["card_retry"], 2)]
    assert (in_flight[0]["pending_action"], in_flight[0]["pending_attempt"]) == ("hold_card", 2)
    assert {w["pending_attempt"] for w in tables["billing_windows"] if w not in in_flight} == {0}
    assert [(r["retry_at"], r["last_error"]) for r in tables["session_refunds"]] == [
        (None, None),
        (None, None),
    ]


async def test_calls_keep_the_reconnect_grace_the_deployment_was_configured_with(
    upgrade_url, tmp_path
):
    """Earlier releases read the grace from the setting while a call ran: a deployment set to
    30 s ran its calls with 30 s, and `vidivo migrate` there must say so, not the default."""
    history = await history_at_0001(upgrade_url)
    env = {
        "VIDIVO_DATA_DIR": str(tmp_path),
        "VIDIVO_DATABASE_URL": upgrade_url,
        "VIDIVO_RECONNECT_GRACE_SECONDS": "30",
    }
    migrated = await asyncio.to_thread(
        CliRunner().invoke, cli, ["migrate"], env=env, catch_exceptions=False
    )
    assert migrated.exit_code == 0, migrated.output

    calls = (await rows_of_every_table(upgrade_url))["call_sessions"]
    graces = {call["id"]: call["reconnect_grace_seconds"] for call in calls}
    assert graces == dict.fromkeys(history.calls.values(), 30)


async def test_downgrade_and_upgrade_again_give_back_every_row(upgrade_url):
    await history_at_0001(upgrade_url)
    at_0001 = await rows_of_every_table(upgrade_url)
    await migrate(upgrade_url, "head")
    at_head = await rows_of_every_table(upgrade_url)

    await migrate(upgrade_url, "0001", down=True)
    assert await rows_of_every_table(upgrade_url) == at_0001  # `hold_card_2` again, too
    await migrate(upgrade_url, "head")
    assert await rows_of_every_table(upgrade_url) == at_head


# After the upgrade: the app, with settings that have changed since these calls started ----


@dataclass
class Upgraded:
    context: AppContext
    client: httpx.AsyncClient
    history: History
    host_headers: dict[str, str]

    async def advance(self, seconds: int) -> None:
        response = await self.client.post("/v1/test/clock/advance", json={"seconds": seconds})
        assert response.status_code == 200, response.text

    async def calls(self) -> dict[str, CallSession]:
        async with self.context.session_factory() as db:
            return {
                name: await db.get_one(CallSession, session_id)
                for name, session_id in self.history.calls.items()
            }

    async def windows(self, name: str) -> dict[int, BillingWindow]:
        async with self.context.session_factory() as db:
            rows = await db.scalars(
                select(BillingWindow).where(BillingWindow.session_id == self.history.calls[name])
            )
            return {w.number: w for w in rows}

    async def refund(self, amount: str, key: str) -> httpx.Response:
        return await self.client.post(
            f"/v1/sessions/{self.history.calls['refunded']}/refunds",
            headers={**self.host_headers, "Idempotency-Key": key},
            json={"amount": amount},
        )


@pytest.fixture(scope="module")
async def upgraded(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Upgraded]:
    """The history upgraded and run until no call is unfinished: the host ends the live call
    2:30 after the upgrade, the rest ends by itself as the clock moves."""
    folder = tmp_path_factory.mktemp("upgrade-run")
    url = await asyncio.to_thread(fresh_database, folder, "upgrade_run")  # it runs a loop
    history = await history_at_0001(url)
    await migrate(url, "head")
    settings = Settings(
        data_dir=folder,
        database_url=url,
        public_base_url="https://vidivo.test",
        test_clock=True,
        platform_fee_percent=Decimal(10),
        reconnect_grace_seconds=120,
    )
    app = create_app(settings, clock=TestClock(UPGRADE_AT))
    context: AppContext = app.state.context
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        login = await client.post(
            "/v1/auth/token", json={"email": history.host_email, "password": PASSWORD}
        )
        assert login.status_code == 200, login.text
        run = Upgraded(context, client, history, bearer(login.json()["access_token"]))
        await run.advance(150)
        ended = await client.post(
            f"/v1/sessions/{history.calls['live']}/end", headers=run.host_headers
        )
        assert ended.status_code == 200, ended.text
        for _ in range(30):
            calls = await run.calls()
            if all(call.state in FINAL_STATES for call in calls.values()):
                break
            await run.advance(60)
        yield run
    await dispose(context.engine)


async def test_every_call_started_before_the_upgrade_reaches_its_end(upgraded):
    states = {name: (c.state, c.end_reason) for name, c in (await upgraded.calls()).items()}
    assert states == {
        "waiting": (SessionState.EXPIRED, "host_no_show"),
        "live": (SessionState.ENDED, "ended_by_host"),
        "card_retry": (SessionState.ENDED, "max_spend"),
        "paused": (SessionState.ENDED, "reconnect_timeout"),
        "ending": (SessionState.ENDED, "ended_by_guest"),
        "ended": (SessionState.ENDED, "ended_by_host"),
        "refunded": (SessionState.ENDED, "ended_by_guest"),
    }
    async with upgraded.context.session_factory() as db:
        assert await ledger.audit(db) == []


async def test_each_call_is_charged_its_own_rate_for_the_minutes_it_ran(upgraded):
    calls = await upgraded.calls()
    for name, expected in CAPTURED.items():
        captured = {n: w.captured_cents for n, w in (await upgraded.windows(name)).items()}
        assert captured == expected, name
        started_minutes = -(-calls[name].banked_live_ms // 60_000)
        assert sum(captured.values()) == started_minutes * calls[name].rate_cents, name
    waiting = await upgraded.windows("waiting")
    assert [(w.state, w.captured_cents) for w in waiting.values()] == [(WindowState.RELEASED, 0)]


async def test_no_hold_is_left_on_a_guests_card_and_the_in_flight_one_is_replayed(upgraded):
    """`hold_card_2` had reached the provider: the upgraded engine must ask again under the
    same key and get that hold back, not place a second one."""
    async with upgraded.context.session_factory() as db:
        intents = {i.id: i for i in await db.scalars(select(SimPaymentIntent))}
        held = list(await db.scalars(select(BillingWindow)))
    retried = next(
        w for w in held if w.session_id == upgraded.history.calls["card_retry"] and w.number == 2
    )
    assert retried.provider_hold_id == upgraded.history.in_flight_hold_id
    authorized = {i.id for i in intents.values() if i.status != HoldStatus.FAILED}
    assert authorized == {w.provider_hold_id for w in held}
    assert [i.id for i in intents.values() if i.status == HoldStatus.REQUIRES_CAPTURE] == []
    for window in held:
        intent = intents[window.provider_hold_id or ""]
        if window.state == WindowState.CAPTURED:
            assert (intent.status, intent.amount_captured, intent.application_fee) == (
                HoldStatus.SUCCEEDED,
                window.captured_cents,
                window.fee_cents,
            )
        else:
            assert (window.state, intent.status) == (WindowState.RELEASED, HoldStatus.CANCELED)


async def test_a_call_started_before_the_upgrade_keeps_its_platform_fee(upgraded):
    """The calls started at a 15 % fee; the app now runs at 10 %. Every capture, before or
    after the upgrade, takes the call's own 15 %."""
    fees = {}
    for name in CAPTURED:
        for number, window in (await upgraded.windows(name)).items():
            fees[name, number] = window.fee_cents
    expected = {
        (name, number): (cents * FEE_BASIS_POINTS + 5_000) // 10_000  # 15 %, half up
        for name, captured in CAPTURED.items()
        for number, cents in captured.items()
    }
    assert fees == expected


async def test_a_paused_call_keeps_the_reconnect_grace_it_started_with(upgraded):
    """Paused 30 s before the upgrade with the 60 s grace of its time; the app now allows 120."""
    paused = (await upgraded.calls())["paused"]
    grace = timedelta(seconds=paused.reconnect_grace_seconds)
    assert paused.ended_at == after(seconds=30) == before(seconds=30) + grace


async def test_the_host_can_refund_what_is_left_of_a_call_refunded_before_the_upgrade(upgraded):
    refused = await upgraded.refund("1.51", "after-upgrade-too-much")
    assert refused.status_code == 400, refused.text
    refunded = await upgraded.refund("1.50", "after-upgrade-rest")
    assert refunded.status_code == 201, refunded.text
    async with upgraded.context.session_factory() as db:
        window = next(iter((await upgraded.windows("refunded")).values()))
        intent = await db.get_one(SimPaymentIntent, window.provider_hold_id)
        totals = await ledger.totals(db, upgraded.history.calls["refunded"])
    assert intent.amount_refunded == totals[LedgerKind.REFUND] == 400
