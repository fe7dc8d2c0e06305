"""A whole call in two real browsers: the host sets up on the dashboard, the guest pays on the
link page, both talk over WebRTC relayed by coturn, billing moves on the test clock."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import App

pytestmark = pytest.mark.browser

INBOUND_VIDEO = """async () => {
  const stats = await window.vidivoCall.pc.getStats();
  let video = null;
  const local = [];
  stats.forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "video") {
      video = { bytes: s.bytesReceived || 0, frames: s.framesDecoded || 0 };
    }
    if (s.type === "local-candidate") local.push(`${s.candidateType}:${s.address}`);
  });
  return { video, local };
}"""


async def host_signs_up_and_makes_a_link(app: App, host: Page, tmp_path: Path) -> str:
    await host.goto(f"{app.base}/app")
    await host.fill("#signup-name", "Dr. Rivera")
    await host.fill("#signup-email", "rivera@example.com")
    await host.fill("#signup-password", "correct horse battery")
    await host.click("#sign-up")
    await expect(host.locator("#verify")).to_be_visible()
    await expect(host.locator("#who")).to_have_text("Dr. Rivera")

    await host.fill("#verify-token", app.last_verification_token())
    await host.locator("#verify-form button[type=submit]").click()
    await expect(host.locator("#verify")).to_be_hidden()

    # Payouts first: links need a ready payout account.
    await host.click("#start-onboarding")
    await host.get_by_role("button", name="Complete payout setup").click()
    await expect(host.get_by_role("heading", name="Payout setup finished")).to_be_visible()
    await host.goto(f"{app.base}/app")
    await expect(host.locator("#payout-status")).to_have_text(re.compile("ready"))

    await host.fill("#link-rate", "2.50")
    await host.fill("#link-window", "5")
    await host.fill("#link-label", "Office hours")
    await host.click("#create-link")
    first_link = host.locator("#link-rows tr").first.locator("a")
    await expect(first_link).to_have_text(re.compile(r"/c/[a-z0-9]{10}$"))
    url = await first_link.get_attribute("href")
    assert url is not None
    return url


async def video_flows(page: Page) -> None:
    """Inbound video bytes and decoded frames rise, over relay candidates on loopback only."""
    # Right after `connected` the inbound stream may not be reported yet: wait for it.
    for _ in range(50):
        first = await page.evaluate(INBOUND_VIDEO)
        if first["video"] and first["video"]["frames"] > 0:
            break
        await page.wait_for_timeout(200)
    await page.wait_for_timeout(1500)
    later = await page.evaluate(INBOUND_VIDEO)
    assert first["video"] and later["video"], later
    assert later["video"]["bytes"] > first["video"]["bytes"]
    assert later["video"]["frames"] > first["video"]["frames"]
    assert later["local"] and all(c == "relay:127.0.0.1" for c in later["local"]), later["local"]


def ledger_captured_cents(database: Path, session_id: str) -> int:
    with sqlite3.connect(database) as db:
        row = db.execute(
            "SELECT COALESCE(SUM(amount_cents), 0) FROM ledger_entries "
            "WHERE session_id = ? AND kind = 'capture'",
            (session_id,),
        ).fetchone()
    return int(row[0])


async def snapshot(page: Page) -> dict[str, Any]:
    await page.evaluate("window.vidivoCall.refresh()")
    return await page.evaluate("window.vidivoCall.snapshot()")


async def test_a_paid_call_from_link_to_receipt_in_two_browsers(app_server, contexts, tmp_path):
    app = app_server
    host_context, guest_context = contexts
    host, guest = await host_context.new_page(), await guest_context.new_page()
    url = await host_signs_up_and_makes_a_link(app, host, tmp_path)

    # The guest page explains the money before anything is held.
    await guest.goto(url)
    await expect(guest.get_by_role("heading", name="Video call with Dr. Rivera")).to_be_visible()
    await expect(guest.locator("#how-billing-works")).to_contain_text(
        "We hold $12.50 on your card at the start and every 5 minutes"
    )
    # ...and what time is billed when a connection drops, before any card is asked for.
    await expect(guest.locator("#how-time-is-metered")).to_contain_text(
        "billing stops at the moment your connection dropped"
    )
    await guest.get_by_label("Your name").fill("Alex")
    await guest.get_by_label("Email (for your receipt)").fill("alex@example.com")
    await guest.get_by_label("Card").select_option("pm_sim_decline_after_2")
    await guest.get_by_role("button", name="Start call").click()
    await guest.wait_for_url(re.compile(r"/call/[0-9A-Z]{26}$"))
    session_id = guest.url.rsplit("/", 1)[1]
    await expect(guest.locator("#call-status")).to_contain_text("Waiting for the host")

    # The host hears the call ring on the dashboard and takes it.
    incoming = host.locator(f'#incoming-list [data-session-id="{session_id}"]')
    await expect(incoming).to_contain_text("Alex is calling")
    await incoming.get_by_role("button", name="Accept").click()
    await incoming.get_by_role("button", name="Join now").click()  # after the device check
    await host.wait_for_url(re.compile(f"/call/{session_id}$"))

    for page in (host, guest):
        await expect(page.locator("#call")).to_have_attribute(
            "data-connection", "connected", timeout=20000
        )
        await expect(page.locator("#call-status")).to_contain_text("Live with")
    for page in (host, guest):
        await video_flows(page)

    # Four minutes in, the second window is held; the cost on both screens follows.
    app.advance(240)
    for page in (host, guest):
        state = await snapshot(page)
        assert state["current_window"] == 2, state
        await expect(page.locator("#running-cost")).to_have_text(re.compile(r"^\$1[0-9]\.\d\d$"))
        await expect(page.locator("#renewal-countdown")).not_to_have_text("–")

    # The third hold is declined: both are told, with the amount; the guest gives a new card.
    app.advance(300)
    await expect(guest.locator("#declined")).to_be_visible()
    await expect(guest.locator("#declined-text")).to_contain_text("declined for the next hold of $")
    await expect(host.locator("#declined-text")).to_contain_text("The guest's card was declined")
    await guest.get_by_label("New card").select_option("pm_card_visa")
    await guest.get_by_role("button", name="Use this card").click()
    await expect(guest.locator("#declined")).to_be_hidden()
    assert (await snapshot(guest))["hold_declined"] is False

    app.advance(60)
    await guest.get_by_role("button", name="Hang up").click()
    for page in (guest, host):
        await expect(page.locator("#receipt")).to_be_visible()
        await expect(page.locator("#call-status")).to_contain_text("The call has ended")

    shown = await guest.locator("#receipt-total").inner_text()
    captured = ledger_captured_cents(
        app.server.log_path.parent / "data" / "vidivo.sqlite3", session_id
    )
    assert captured > 0
    assert shown == f"${captured // 100}.{captured % 100:02d}"
    assert await host.locator("#receipt-total").inner_text() == shown
    await expect(guest.locator("#receipt-metering")).to_contain_text("never billed")
