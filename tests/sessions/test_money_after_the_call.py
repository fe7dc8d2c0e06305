"""Receipts, refunds and earnings: what the guest paid and the host keeps."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import delete

from vidivo.calls.ledger import audit
from vidivo.calls.models import LedgerEntry, LedgerKind


@pytest.fixture
async def finished_call(calls):
    """A 7½-minute call at 2.50/min with 5-minute windows: 20.00 captured in two windows."""
    async with calls.live() as (call, _h, _g):
        await calls.advance(450)
        await calls.end(call)
    return call


async def test_the_guest_receipt_lists_each_window(calls, client, finished_call):
    call = finished_call
    response = await client.get(
        f"/v1/sessions/{call.session_id}/receipt", headers=call.guest_headers
    )
    assert response.status_code == 200
    receipt = response.json()["receipt"]
    assert receipt["host_display_name"] == "Jane Smith"
    assert receipt["currency"] == "USD"
    assert receipt["billed_minutes"] == 8
    assert receipt["live_seconds"] == 450
    assert receipt["total_charged"] == "20.00"
    assert receipt["refunded"] == "0.00"
    assert [(w["captured"], w["released"]) for w in receipt["windows"]] == [
        ("12.50", "0.00"),
        ("7.50", "5.00"),
    ]


async def test_a_partial_refund_then_the_rest(calls, client, finished_call, context):
    call = finished_call
    url = f"/v1/sessions/{call.session_id}/refunds"
    headers = {**call.host.headers, "Idempotency-Key": "refund-1"}
    first = await client.post(url, headers=headers, json={"amount": "8.00", "reason": "late"})
    assert first.status_code == 201, first.text
    assert first.json()["refund"]["amount"] == "8.00"
    assert first.json()["refund"]["state"] == "succeeded"
    replay = await client.post(url, headers=headers, json={"amount": "8.00", "reason": "late"})
    assert replay.json()["refund"]["id"] == first.json()["refund"]["id"]
    too_much = await client.post(
        url,
        headers={**call.host.headers, "Idempotency-Key": "refund-2"},
        json={"amount": "12.01"},
    )
    assert too_much.status_code == 400
    rest = await client.post(
        url, headers={**call.host.headers, "Idempotency-Key": "refund-3"}, json={}
    )
    assert rest.json()["refund"]["amount"] == "12.00"
    nothing_left = await client.post(
        url, headers={**call.host.headers, "Idempotency-Key": "refund-4"}, json={}
    )
    assert nothing_left.status_code == 400
    receipt = (
        await client.get(f"/v1/sessions/{call.session_id}/receipt", headers=call.guest_headers)
    ).json()["receipt"]
    assert receipt["refunded"] == "20.00"
    async with context.session_factory() as db:
        assert await audit(db) == []


async def test_refunds_need_an_idempotency_key_and_the_owner(calls, client, finished_call, hosts):
    call = finished_call
    url = f"/v1/sessions/{call.session_id}/refunds"
    no_key = await client.post(url, headers=call.host.headers, json={})
    assert no_key.status_code == 400
    stranger = await hosts.create()
    other = await client.post(url, headers={**stranger.headers, "Idempotency-Key": "k"}, json={})
    assert other.status_code == 404
    guest = await client.post(url, headers={**call.guest_headers, "Idempotency-Key": "k"}, json={})
    assert guest.status_code == 401


async def test_earnings_show_gross_fees_refunds_and_net(calls, client, finished_call):
    host = finished_call.host
    earnings = (await client.get("/v1/earnings", headers=host.headers)).json()
    assert earnings == {
        "currency": "USD",
        "from": None,
        "to": None,
        "sessions": 1,
        "gross": "20.00",
        "platform_fees": "2.00",
        "refunds": "0.00",
        "net": "18.00",
    }
    await client.post(
        f"/v1/sessions/{finished_call.session_id}/refunds",
        headers={**host.headers, "Idempotency-Key": "all"},
        json={},
    )
    after = (await client.get("/v1/earnings", headers=host.headers)).json()
    # A full refund hands back the platform fee too: the host is left with nothing, not -2.00.
    assert (after["gross"], after["platform_fees"], after["refunds"], after["net"]) == (
        "20.00",
        "0.00",
        "20.00",
        "0.00",
    )
    window = (
        await client.get(
            "/v1/earnings?from=2026-03-16T00:00:00Z&to=2026-03-17T00:00:00Z", headers=host.headers
        )
    ).json()
    assert window["gross"] == "0.00"
    naive = await client.get("/v1/earnings?from=2026-03-16T00:00:00", headers=host.headers)
    assert naive.status_code == 400


def run_audit(settings, tmp_path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "VIDIVO_DATABASE_URL": settings.database_url,
        "VIDIVO_SIGNING_KEY_PATH": str(settings.active_signing_key_path),
        "VIDIVO_DATA_DIR": str(tmp_path),
    }
    return subprocess.run(
        [sys.executable, "-m", "vidivo.cli", "billing", "audit"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_the_audit_command_is_clean_after_real_calls_and_catches_a_lost_capture(
    finished_call, settings, tmp_path, context
):
    clean = run_audit(settings, tmp_path)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "balanced" in clean.stdout
    async with context.session_factory() as db:
        await db.execute(
            delete(LedgerEntry).where(
                LedgerEntry.session_id == finished_call.session_id,
                LedgerEntry.kind == LedgerKind.CAPTURE,
                LedgerEntry.window_number == 2,
            )
        )
        await db.commit()
    broken = run_audit(settings, tmp_path)
    assert broken.returncode == 1
    assert f"{finished_call.session_id}: captured 1250 != billed 2000" in broken.stdout
