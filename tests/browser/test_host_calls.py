"""The host's calls and money in the browser, on a phone (390×844) and a desktop (1280×800):
an incoming call rings and stays on screen wherever the host has scrolled, accepting checks
the devices then joins; the history says how each call ended, when, how long, through which
link and for how much; a refund from a row shows on it; the earnings chart shows the money."""

from __future__ import annotations

import contextlib
import itertools
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from httpx_ws import aconnect_ws
from playwright.async_api import Browser, Page, expect

from tests.browser.accessibility import assert_accessible_in_both_schemes
from tests.browser.conftest import App, screenshot_path

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
SIZES = [pytest.param(PHONE, id="phone"), pytest.param(DESKTOP, id="desktop")]
PASSWORD = "correct horse battery"


@dataclass
class HostAccount:
    tokens: dict[str, Any]
    link: dict[str, Any]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens['access_token']}"}


def host_with_link(app: App) -> HostAccount:
    """A verified host with a ready payout account and a labelled link, built over the API."""
    with httpx.Client(base_url=app.base) as http:
        signup = http.post(
            "/v1/auth/signup",
            json={
                "email": "rivera@example.com",
                "password": PASSWORD,
                "display_name": "Dr. Rivera",
            },
        )
        assert signup.status_code == 201, signup.text
        verify = http.post("/v1/auth/verify-email", json={"token": app.last_verification_token()})
        assert verify.status_code == 200, verify.text
        tokens = http.post(
            "/v1/auth/token", json={"email": "rivera@example.com", "password": PASSWORD}
        ).json()
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        onboarding = http.post("/v1/host/payouts/onboarding", headers=headers).json()["url"]
        assert http.post(onboarding.removeprefix(app.base)).status_code == 303
        link = http.post(
            "/v1/links",
            headers=headers,
            json={"rate_per_minute": "2.50", "window_size_minutes": 5, "label": "Office hours"},
        )
        assert link.status_code == 201, link.text
    return HostAccount(tokens, link.json()["link"])


# The browser's notifications, as the page made them (headless Chromium shows none).
NOTICES = """
window.notices = [];
window.Notification = class {
  static permission = "granted";
  static requestPermission() { return Promise.resolve("granted"); }
  constructor(title, options) {
    this.record = { title, body: options.body, closed: false };
    window.notices.push(this.record);
  }
  close() { this.record.closed = true; }
};
"""


async def open_dashboard(
    browser: Browser, app: App, host: HostAccount, size: dict, script: str | None = None
) -> Page:
    context = await browser.new_context(
        viewport=size, permissions=["camera", "microphone"], locale="en-GB", timezone_id="UTC"
    )
    if script:
        await context.add_init_script(script)
    page = await context.new_page()
    await page.goto(f"{app.base}/app")
    await page.evaluate(
        "tokens => localStorage.setItem('vidivo.host', tokens)", json.dumps(host.tokens)
    )
    await page.reload()
    await expect(page.locator("#who")).to_have_text("Dr. Rivera")
    await expect(page.locator("body")).to_have_attribute("data-listening", "true")
    return page


def start_call(app: App, host: HostAccount, card: str = "pm_card_visa") -> httpx.Response:
    return httpx.post(
        f"{app.base}/v1/links/{host.link['short_code']}/sessions",
        json={"guest_name": "Alex", "guest_email": "alex@example.com", "payment_method_id": card},
    )


def started_call(app: App, host: HostAccount) -> tuple[str, str]:
    response = start_call(app, host)
    assert response.status_code == 201, response.text
    body = response.json()
    return body["session"]["id"], body["guest_token"]


@contextlib.asynccontextmanager
async def both_present(app: App, session_id: str, tokens: list[str]) -> AsyncIterator[None]:
    """The host's and the guest's signaling sockets open: the call is live inside the block."""
    async with httpx.AsyncClient() as http, contextlib.AsyncExitStack() as stack:
        for token in tokens:
            url = f"{app.base.replace('http', 'ws')}/v1/sessions/{session_id}/signal?token={token}"
            ws = await stack.enter_async_context(aconnect_ws(url, http))
            assert (await ws.receive_json(timeout=5))["type"] == "welcome"
        yield


@pytest.mark.parametrize("size", SIZES)
async def test_an_incoming_call_rings_on_screen_wherever_the_host_is_then_joins(
    app_server, browser, tmp_path, size
):
    app = app_server
    host = host_with_link(app)
    page = await open_dashboard(browser, app, host, size, NOTICES)
    if size == DESKTOP:  # a click on the page: the browser lets it ring at once
        await page.locator("#dashboard-heading").click()
    await page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    await expect(page).to_have_title("Dashboard · Vidivo")

    session_id, _ = started_call(app, host)
    call = page.locator(f'#incoming-list [data-session-id="{session_id}"]')
    await expect(call).to_contain_text("Alex is calling")
    await expect(call).to_contain_text("Office hours · $2.50 / min")
    await expect(call.locator(".incoming-left")).to_have_text(re.compile(r"^(10:00|9:\d\d) left"))
    await expect(call).to_be_in_viewport()  # scrolled to the bottom, the call is still there
    await expect(page).to_have_title("(1) Incoming call · Vidivo")
    if size == PHONE:  # not clicked yet: the page explains why it is silent
        await expect(page.locator("body")).to_have_attribute("data-ringing", "blocked")
        await call.page.get_by_role("button", name="Enable ringing").click()
        await expect(page.get_by_role("button", name="Enable ringing")).to_be_hidden()
    await expect(page.locator("body")).to_have_attribute("data-ringing", "true")
    await expect(page.locator("#alerts-status")).to_contain_text("and as a notification")
    await expect(page.get_by_role("button", name="Also notify me outside this tab")).to_be_hidden()
    notices = await page.evaluate("window.notices")
    assert notices == [
        {"title": "Alex is calling", "body": "Office hours · $2.50 / min", "closed": False}
    ]
    sheet = await page.locator("#incoming").bounding_box()
    assert sheet is not None
    if size == PHONE:  # a bottom sheet the width of the phone
        assert sheet["width"] == PHONE["width"]
        assert abs(sheet["y"] + sheet["height"] - PHONE["height"]) < 2
        await page.screenshot(path=screenshot_path("incoming-call", tmp_path))
    else:  # a card at the top right
        assert sheet["x"] > DESKTOP["width"] / 2 and sheet["y"] < 40
    name = "phone" if size == PHONE else "desktop"
    await assert_accessible_in_both_schemes(page, f"dashboard, incoming call, {name}")

    await call.get_by_role("button", name="Accept").click()
    check_name = "Check your camera and microphone"
    check = call.get_by_role("group", name=check_name)
    await expect(check.get_by_role("heading", name=check_name)).to_be_visible()
    await expect(page.locator("body")).to_have_attribute("data-ringing", "false")
    await check.get_by_role("button", name="Test camera and microphone").click()
    await expect(check.locator(".device-check")).to_have_attribute("data-state", "ready")
    await assert_accessible_in_both_schemes(page, f"dashboard, accept's device check, {name}")
    await check.get_by_role("button", name="Join now").click()
    await page.wait_for_url(re.compile(f"/call/{session_id}$"))
    assert await page.title() != "(1) Incoming call · Vidivo"
    await page.context.close()


@pytest.mark.parametrize("size", SIZES)
async def test_the_history_says_how_each_call_ended_and_a_refund_shows_on_its_row(
    app_server, browser, tmp_path, size
):
    app = app_server
    host = host_with_link(app)
    http = httpx.AsyncClient(base_url=app.base, headers=host.headers)
    for _ in range(17):  # older calls, for a second page of history
        assert start_call(app, host, "pm_card_chargeDeclined").status_code == 402
    declined, _ = started_call(app, host)
    assert (await http.post(f"/v1/sessions/{declined}/decline")).is_success
    cancelled, cancelled_token = started_call(app, host)
    guest = {"Authorization": f"Bearer {cancelled_token}"}
    assert (await http.post(f"/v1/sessions/{cancelled}/end", headers=guest)).is_success
    assert start_call(app, host, "pm_card_chargeDeclined").status_code == 402
    billed, billed_token = started_call(app, host)
    assert (await http.post(f"/v1/sessions/{billed}/accept")).is_success
    async with both_present(app, billed, [host.tokens["access_token"], billed_token]):
        # 7½ minutes live: 8 minutes at $2.50
        advanced = await http.post("/v1/test/clock/advance", json={"seconds": 450})
        assert advanced.is_success, advanced.text
        ended = await http.post(f"/v1/sessions/{billed}/end")
        assert ended.is_success, ended.text

    page = await open_dashboard(browser, app, host, size)
    rows = page.locator("#session-rows tr")
    await expect(rows).to_have_count(20)  # a page; the oldest call is on the next
    await page.get_by_role("button", name="Show more").click()
    await expect(rows).to_have_count(21)
    await expect(page.get_by_role("button", name="Show more")).to_be_hidden()
    outcome = {
        declined: "You declined",
        cancelled: "Guest cancelled before you answered",
        billed: "Ended by you",
    }
    for session_id, words in outcome.items():
        cell = page.locator(f'#session-rows tr[data-session-id="{session_id}"] .calls-outcome')
        await expect(cell).to_have_text(words)
    card_row = page.locator('#session-rows tr[data-end-reason="card_declined"]').first
    await expect(card_row.locator(".calls-outcome")).to_have_text("Card declined at start")
    await expect(card_row).to_contain_text("Nothing charged")
    await expect(card_row).to_contain_text("Did not start")

    row = page.locator(f'#session-rows tr[data-session-id="{billed}"]')
    await expect(row).to_contain_text("7 min 30 s")
    await expect(row).to_contain_text("Office hours")
    await expect(row).to_contain_text(host.link["short_code"])
    await expect(row.locator(".calls-billed")).to_have_text("$20.00 billed")
    listed = (await http.get("/v1/sessions")).json()["sessions"]
    created_at = next(s["created_at"] for s in listed if s["id"] == billed)
    await expect(row.locator("time")).to_have_attribute("datetime", created_at)
    await expect(row.locator("time")).to_have_text(re.compile(r"\d{4}, \d\d:\d\d$"))

    # A partial refund: too much is refused beside the field, in words, before any request.
    await row.get_by_role("button", name="Refund the call with Alex").click()
    dialog = page.get_by_role("dialog", name="Refund a call")
    await expect(dialog).to_contain_text("Everything left: $20.00")
    name = "phone" if size == PHONE else "desktop"
    await assert_accessible_in_both_schemes(page, f"history with the refund dialog, {name}")
    await dialog.get_by_label("Part of it").check()
    await dialog.get_by_label("Amount to refund ($)").fill("25")
    await dialog.get_by_role("button", name="Refund").click()
    await expect(dialog.locator("#refund-amount-error")).to_have_text(
        "At most $20.00 is left to refund."
    )
    await assert_accessible_in_both_schemes(page, f"refund dialog with an error, {name}")
    await dialog.get_by_label("Amount to refund ($)").fill("five")
    await dialog.get_by_role("button", name="Refund").click()
    await expect(dialog.locator("#refund-amount-error")).to_have_text(
        "Enter an amount in dollars, like 25 or 25.50."
    )
    await dialog.get_by_label("Amount to refund ($)").fill("5.00")
    await dialog.get_by_label(re.compile("^Reason")).fill("The line was bad")
    await dialog.get_by_role("button", name="Refund").click()
    await expect(dialog).to_be_hidden()
    await expect(page.locator("#flash")).to_contain_text("Refunded $5.00 to Alex")
    row = page.locator(f'#session-rows tr[data-session-id="{billed}"]')
    await expect(row.locator(".calls-refunded")).to_have_text("$5.00 refunded")
    # Meanwhile $5.00 more is refunded elsewhere: this page's stale $15.00 is refused in words.
    elsewhere = await http.post(
        f"/v1/sessions/{billed}/refunds",
        headers={"Idempotency-Key": "elsewhere"},
        json={"amount": "5.00"},
    )
    assert elsewhere.status_code == 201, elsewhere.text
    await row.get_by_role("button", name="Refund the call with Alex").click()
    await expect(dialog).to_contain_text("Everything left: $15.00")
    await dialog.get_by_label("Part of it").check()
    await dialog.get_by_label("Amount to refund ($)").fill("15")
    await dialog.get_by_role("button", name="Refund").click()
    await expect(dialog.locator("#refund-amount-error")).to_have_text(
        "The amount is more than what is left to refund."
    )
    await dialog.get_by_role("button", name="Cancel").click()
    await expect(dialog).to_be_hidden()
    await page.reload()  # the refunds are the server's, not only the page's
    await expect(row.locator(".calls-refunded")).to_have_text("$10.00 refunded")

    # The earnings: today's bar holds the $20.00 billed; the totals and the table agree.
    section = page.locator("#earnings-section")
    await expect(section.locator(".chart-bar[data-gross='20.00']")).to_have_count(1)
    await expect(section.locator("svg[role=img]")).to_have_accessible_name(
        re.compile(r"\$20\.00 in all, \$9\.00 net to you")
    )
    # Every label of the chart is whole and readable: inside the chart, none over another.
    chart = await section.locator("svg.earnings-chart").bounding_box()
    spans = await section.locator(".chart-label, .chart-value").evaluate_all(
        "els => els.map((e) => { const b = e.getBoundingClientRect(); return [b.left, b.right]; })"
    )
    assert chart and spans
    assert all(chart["x"] <= left and right <= chart["x"] + chart["width"] for left, right in spans)
    axis = await section.locator(".chart-label").evaluate_all(
        "els => els.map((e) => { const b = e.getBoundingClientRect(); return [b.left, b.right]; })"
    )
    assert all(before[1] < after[0] for before, after in itertools.pairwise(axis)), axis
    totals = section.locator("#earnings-totals")
    await expect(totals).to_contain_text("Gross$20.00")
    await expect(totals).to_contain_text("Refunds$10.00")
    await expect(totals.locator(".earnings-net")).to_have_text("$9.00")
    await section.get_by_text("Show as a table").click()
    await http.aclose()
    await expect(section.locator("#earnings-rows tr")).to_have_count(14)
    await expect(section.locator("#earnings-rows tr").last).to_contain_text("$20.00")
    # Open, the table fits the screen: nothing runs off the side of a phone.
    width = await page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= size["width"], f"the page is {width}px wide with the earnings table open"
    await assert_accessible_in_both_schemes(page, f"earnings with the table, {name}")
    await section.get_by_role("button", name="Months").click()
    await expect(section.get_by_role("button", name="Months")).to_have_attribute(
        "aria-pressed", "true"
    )
    await expect(section.locator("#earnings-rows tr")).to_have_count(12)
    await expect(section.locator(".chart-bar[data-gross='20.00']")).to_have_count(1)

    # Payouts: none before midnight UTC; a day later the $9.00 net is on its way to the bank.
    payouts = section.locator("#payout-rows tr")
    await expect(section.locator("#payouts-empty")).to_have_text(re.compile("^No payouts yet"))
    await expect(section.locator("#payouts-table")).to_be_hidden()
    now = datetime.fromisoformat(app.advance(86400)["now"])
    await section.get_by_role("button", name="Days").click()  # loads earnings and payouts
    await expect(payouts).to_have_count(1)
    await expect(section.locator("#payouts-empty")).to_be_hidden()
    await expect(payouts.locator(".payout-amount")).to_have_text("$9.00")
    await expect(payouts.locator(".payout-status")).to_have_text("On its way to your bank")
    arrival = (now.date() + timedelta(days=2)).isoformat()  # paid out at the last midnight
    await expect(payouts.locator("time")).to_have_attribute("datetime", arrival)
    await expect(payouts.locator("td").first).to_contain_text("(expected)")
    if size == PHONE:  # stacked: each cell says which column it is
        await expect(payouts.locator(".payout-amount")).to_have_attribute("data-label", "Amount")
    if size == DESKTOP:
        await section.get_by_role("button", name="Days").click()
        await expect(section.locator("#earnings-rows tr")).to_have_count(14)
        await section.get_by_text("Show as a table").click()  # closed again for the picture
        await expect(section.locator(".earnings-table")).to_be_hidden()
        await section.screenshot(path=screenshot_path("earnings", tmp_path))
    await page.context.close()
