"""The guest page before any money moves, on a phone and on a desktop: the camera and
microphone are checked (preview, device choice, level, audio only) before the card is asked
for, every field problem is said in words beside its field, a declined card is explained beside
the card, and a blocked camera says what to do."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from httpx_ws import aconnect_ws
from playwright.async_api import Browser, Page, Route, async_playwright, expect

from tests.browser.accessibility import assert_accessible_in_both_schemes
from tests.browser.conftest import CHROMIUM, CHROMIUM_FLAGS, App, screenshot_path
from tests.browser.test_card_authentication import host_with_link

pytestmark = pytest.mark.browser
SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 800}}
INTERNALS = ("generic_decline", "insufficient_funds", "decimal string", "String should", "(guest_")


async def page_shows_no_internals(page: Page) -> None:
    text = await page.locator("body").inner_text()
    for word in INTERNALS:
        assert word not in text, f"{word!r} is on the page: {text}"


async def field_error(page: Page, input_id: str) -> str:
    return (await page.locator(f"#{input_id}-error").inner_text()).strip()


@pytest.mark.parametrize("size", ["phone", "desktop"])
async def test_the_guest_checks_devices_then_gets_each_problem_in_words(
    app_server: App, browser: Browser, tmp_path, size
):
    url = host_with_link(app_server)
    context = await browser.new_context(permissions=["camera", "microphone"], viewport=SIZES[size])
    guest = await context.new_page()
    try:
        await guest.goto(url)
        check = guest.get_by_role("heading", name="Check your camera and microphone")
        start = guest.get_by_role("heading", name="Start the call")
        await expect(check).to_be_visible()
        # The device check comes first: above the card form, before any hold.
        check_box, start_box = await check.bounding_box(), await start.bounding_box()
        assert check_box and start_box and check_box["y"] < start_box["y"]
        if size == "phone":
            await guest.screenshot(path=screenshot_path("guest-page", tmp_path), full_page=True)
        await assert_accessible_in_both_schemes(guest, f"guest page, {size}")

        await guest.get_by_role("button", name="Test camera and microphone").click()
        device_check = guest.locator(".device-check")
        await expect(device_check).to_have_attribute("data-state", "ready")
        # The fake camera and microphone are listed, and the ones in use are selected.
        chosen = await guest.evaluate(
            """() => {
              const stream = document.querySelector('.device-preview video').srcObject;
              const picked = (label) => {
                const select = [...document.querySelectorAll('.device-check select')]
                  .find((s) => s.labels[0].textContent === label);
                return { count: select.options.length,
                         label: select.selectedOptions[0]?.textContent || '' };
              };
              return { camera: picked('Camera'), microphone: picked('Microphone'),
                       cameraTrack: stream.getVideoTracks()[0].label,
                       microphoneTrack: stream.getAudioTracks()[0].label };
            }"""
        )
        assert chosen["camera"]["count"] >= 1 and chosen["microphone"]["count"] >= 1, chosen
        assert chosen["camera"]["label"] == chosen["cameraTrack"], chosen
        assert chosen["microphone"]["label"], chosen
        await expect(guest.get_by_role("status")).to_contain_text("Your camera and microphone work")
        # The preview shows the camera's frames, and the meter moves with the (beeping) fake mic.
        await guest.wait_for_function(
            "() => document.querySelector('.device-preview video').videoWidth > 0",
            timeout=10000,
        )
        await guest.wait_for_function(
            "() => Number(document.querySelector('.device-level').ariaValueNow) > 0",
            timeout=10000,
            polling=50,
        )
        if size == "phone":
            await guest.locator("#device-step").screenshot(
                path=screenshot_path("device-check", tmp_path)
            )
        await assert_accessible_in_both_schemes(guest, f"guest page, device check, {size}")

        # Audio only: the preview drops the camera, and the call will open none.
        audio_only = guest.get_by_role("switch", name="Audio only")
        await audio_only.check()
        await expect(device_check).to_have_attribute("data-audio-only", "true")
        await expect(guest.locator(".device-placeholder")).to_have_text(
            "Audio only: the call will not use your camera."
        )
        await expect(guest.get_by_label("Camera", exact=True)).to_be_hidden()
        await expect(device_check).to_have_attribute("data-state", "ready")
        tracks = await guest.evaluate(
            """() => {
              const stream = document.querySelector('.device-preview video').srcObject;
              return {
                video: stream.getVideoTracks().length, audio: stream.getAudioTracks().length,
              };
            }"""
        )
        assert tracks == {"video": 0, "audio": 1}
        saved = await guest.evaluate("() => JSON.parse(localStorage.getItem('vidivo.devices'))")
        assert saved["audioOnly"] is True
        # What the call page opens with that choice: audio and no camera.
        opened = await guest.evaluate(
            """async () => {
              const devices = await import('/static/js/devices.js');
              const stream = await devices.openMedia();
              const kinds = stream.getTracks().map((t) => t.kind);
              stream.getTracks().forEach((t) => t.stop());
              return kinds;
            }"""
        )
        assert opened == ["audio"]

        # Nothing filled in: each field says so, beside itself, before anything is sent.
        await guest.get_by_role("button", name="Start call").click()
        assert await field_error(guest, "guest-name") == "Please fill this in."
        assert await field_error(guest, "guest-email") == "Please fill this in."
        await expect(guest.get_by_label("Your name")).to_be_focused()

        await guest.get_by_label("Your name").fill("Alex")
        await guest.get_by_label("Email (for your receipt)").fill("alex@")
        await guest.get_by_label("Spending limit (optional, dollars)").fill("ten dollars")
        await guest.get_by_role("button", name="Start call").click()
        assert await field_error(guest, "guest-name") == ""
        assert (
            await field_error(guest, "guest-email")
            == "Enter an email address like name@example.com."
        )
        assert (
            await field_error(guest, "max-spend") == "Enter an amount in dollars, like 25 or 25.50."
        )

        # A limit that does not pay for one minute, then one below the first hold.
        await guest.get_by_label("Email (for your receipt)").fill("alex@example.com")
        await guest.get_by_label("Spending limit (optional, dollars)").fill("2")
        await guest.get_by_role("button", name="Start call").click()
        assert await field_error(guest, "max-spend") == (
            "A limit below $2.50 does not pay for one minute. Enter $2.50 or more, "
            "or leave it empty."
        )
        await guest.get_by_label("Spending limit (optional, dollars)").fill("6")
        await expect(guest.locator("#max-spend-effect")).to_have_text(
            "With this limit we hold $5.00 at the start instead of $12.50, and the call ends "
            "by itself after 2 minutes. Minutes are charged whole, so at most $5.00 is charged."
        )

        # Declined cards, in words beside the card; the guest stays on the page to try another.
        await guest.get_by_label("Spending limit (optional, dollars)").fill("")
        for card, words in (
            (
                "pm_card_chargeDeclined",
                "Your card was declined. Try another card, or ask your bank.",
            ),
            (
                "pm_card_chargeDeclinedInsufficientFunds",
                "Your card does not have $12.50 available for the first hold. Try another card.",
            ),
        ):
            await guest.get_by_label("Card").select_option(card)
            await guest.get_by_role("button", name="Start call").click()
            await expect(guest.locator("#test-card-error")).to_have_text(words)
            await expect(guest.get_by_role("button", name="Start call")).to_be_enabled()
        await expect(guest.locator("#test-card")).to_have_attribute("aria-invalid", "true")
        await page_shows_no_internals(guest)
        await assert_accessible_in_both_schemes(guest, f"guest page, declined card, {size}")
    finally:
        await context.close()


def set_away(app: App, away: bool) -> None:
    account = {"email": "sca@example.com", "password": "correct horse battery"}
    with httpx.Client(base_url=app.base) as http:
        token = http.post("/v1/auth/token", json=account).json()["access_token"]
        answer = http.put(
            "/v1/me/availability",
            headers={"Authorization": f"Bearer {token}"},
            json={"away": away},
        )
        assert answer.status_code == 200, answer.text


async def test_a_start_whose_answer_was_lost_is_carried_on_not_made_twice(
    app_server: App, browser: Browser
):
    """The guest's connection drops after the server began the call, so its answer never
    reaches the page: pressing Start call again sends the same start under the same
    Idempotency-Key and lands in that call, with no second call and no second hold. An answer
    the API gave (the host away) is not repeated once the host is back."""
    url = host_with_link(app_server)
    context = await browser.new_context(
        permissions=["camera", "microphone"], viewport=SIZES["phone"]
    )
    guest = await context.new_page()
    keys: list[str] = []
    began: list[dict[str, Any]] = []

    async def note_key(route: Route) -> None:
        keys.append(route.request.headers.get("idempotency-key", ""))
        await route.continue_()

    async def lose_the_answer(route: Route) -> None:
        keys.append(route.request.headers.get("idempotency-key", ""))
        answer = await route.fetch()  # the server does the start...
        began.append(await answer.json())
        await route.abort("connectionreset")  # ...and the page never hears of it

    starts = "**/v1/links/*/sessions"
    try:
        await guest.goto(url)
        await guest.get_by_label("Your name").fill("Alex")
        await guest.get_by_label("Email (for your receipt)").fill("alex@example.com")
        start_button = guest.get_by_role("button", name="Start call")

        set_away(app_server, True)
        await guest.route(starts, note_key)
        await start_button.click()
        await expect(guest.locator("#start-error")).to_contain_text("not taking calls")
        await guest.unroute(starts, note_key)

        set_away(app_server, False)
        await guest.route(starts, lose_the_answer)
        await start_button.click()
        await expect(guest.locator("#start-error")).to_have_text(
            "Vidivo's answer did not arrive. Press Start call again: it carries on the same "
            "call, and nothing is held twice."
        )
        await guest.unroute(starts, lose_the_answer)
        assert began and "session" in began[0], began
        call_id = began[0]["session"]["id"]

        await guest.route(starts, note_key)
        await start_button.click()
        await guest.wait_for_url(f"**/call/{call_id}")
        # The refusal was an answer: the next start had a key of its own. The start that
        # lost its answer was sent again under its key, and that one call is all there is.
        assert len(keys) == 3 and keys[0] != keys[1] and keys[1] == keys[2], keys
        sessions = host_sessions(app_server)
        assert [s["id"] for s in sessions] == [call_id], sessions
        assert sessions[0]["state"] == "waiting_for_host", sessions[0]
    finally:
        await context.close()


def host_sessions(app: App) -> list[dict[str, object]]:
    account = {"email": "sca@example.com", "password": "correct horse battery"}
    with httpx.Client(base_url=app.base) as http:
        token = http.post("/v1/auth/token", json=account).json()["access_token"]
        answer = http.get("/v1/sessions", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200, answer.text
        return list(answer.json()["sessions"])


@pytest.fixture(scope="module")
async def browser_that_asks() -> AsyncIterator[Browser]:
    """Chromium without the flag that accepts every camera prompt: a site not granted the
    camera is refused it, as when a person clicks "Block" (setting the permission to denied
    over CDP does not win against that flag)."""
    flags = [flag for flag in CHROMIUM_FLAGS if flag != "--use-fake-ui-for-media-stream"]
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=flags, headless=True
        )
        yield browser
        await browser.close()


@pytest.mark.parametrize("size", ["phone", "desktop"])
async def test_a_blocked_camera_is_explained_with_the_way_forward(
    app_server: App, browser_that_asks: Browser, size
):
    url = host_with_link(app_server)
    context = await browser_that_asks.new_context(viewport=SIZES[size])
    guest = await context.new_page()
    try:
        await guest.goto(url)
        # Straight to the card, skipping the check: the devices are tried first, and the
        # guest learns about the camera before anything is held.
        await guest.get_by_label("Your name").fill("Alex")
        await guest.get_by_label("Email (for your receipt)").fill("alex@example.com")
        await guest.get_by_role("button", name="Start call").click()
        await expect(guest.locator("#start-error")).to_have_text(
            "Your camera or microphone did not open, so nothing was held. "
            "See step 1 above for what to do."
        )
        assert "/c/" in guest.url
        assert host_sessions(app_server) == []  # no call, so no hold
        await guest.get_by_role("button", name="Test camera and microphone").click()
        await expect(guest.locator(".device-check")).to_have_attribute("data-state", "failed")
        await expect(guest.locator(".device-check")).to_have_attribute(
            "data-error", "NotAllowedError"
        )
        problem = guest.locator(".device-problem")
        await expect(problem).to_contain_text(
            "Your browser blocked the camera and microphone. Allow them in the address bar, "
            "then try again."
        )
        await expect(problem).to_contain_text("nothing is held on your card")
        await assert_accessible_in_both_schemes(guest, f"guest page, blocked camera, {size}")
        # The card form is still there below: nothing was held, nothing is lost.
        await expect(guest.get_by_role("button", name="Start call")).to_be_enabled()
    finally:
        await context.close()


async def a_paid_call_ends(app: App) -> tuple[str, str]:
    """A call made over the API and the signaling sockets (this test is about the receipt):
    7½ minutes at $2.50, so $20.00. Returns the receipt address and the guest's token."""
    url = host_with_link(app)
    short_code = url.rsplit("/", 1)[1]
    async with httpx.AsyncClient(base_url=app.base) as http:
        account = {"email": "sca@example.com", "password": "correct horse battery"}
        token = (await http.post("/v1/auth/token", json=account)).json()["access_token"]
        host = {"Authorization": f"Bearer {token}"}
        started = await http.post(
            f"/v1/links/{short_code}/sessions",
            json={
                "guest_name": "Alex",
                "guest_email": "alex@example.com",
                "payment_method_id": "pm_card_visa",
            },
        )
        assert started.status_code == 201, started.text
        session_id, guest_token = started.json()["session"]["id"], started.json()["guest_token"]
        guest = {"Authorization": f"Bearer {guest_token}"}
        accepted = await http.post(f"/v1/sessions/{session_id}/accept", headers=host)
        assert accepted.status_code == 200, accepted.text
        signal = f"/v1/sessions/{session_id}/signal?token="
        socket_base = app.base.replace("http://", "ws://")
        async with (
            aconnect_ws(f"{socket_base}{signal}{token}", http) as host_ws,
            aconnect_ws(f"{socket_base}{signal}{guest_token}", http) as guest_ws,
        ):
            for ws in (host_ws, guest_ws):
                assert (await ws.receive_json(timeout=5))["type"] == "welcome"
            state = (await http.get(f"/v1/sessions/{session_id}", headers=guest)).json()
            assert state["session"]["state"] == "live", state
            app.advance(450)
            ended = await http.post(f"/v1/sessions/{session_id}/end", headers=guest)
            assert ended.status_code == 200, ended.text
        receipt = await http.get(f"/v1/sessions/{session_id}/receipt", headers=guest)
        return str(receipt.json()["receipt"]["receipt_url"]), guest_token


async def test_the_receipt_opens_in_a_fresh_browser_at_both_sizes(
    app_server: App, browser: Browser, tmp_path
):
    receipt_url, _ = await a_paid_call_ends(app_server)
    for size in ("phone", "desktop"):
        # A new profile: no token, no storage, as on another device.
        context = await browser.new_context(viewport=SIZES[size])
        page = await context.new_page()
        try:
            await page.goto(receipt_url)
            await expect(
                page.get_by_role("heading", name="Video call with Dr. Rivera")
            ).to_be_visible()
            await expect(page.locator("#receipt-card")).to_have_text("Visa ending in 4242")
            await expect(page.locator("#receipt-total")).to_have_text("$20.00")
            await expect(page.locator("#receipt-paid")).to_have_text("$20.00")
            await expect(page.locator("#receipt-windows tbody tr")).to_have_count(2)
            await expect(page.locator("#receipt-length")).to_contain_text("8 minutes billed")
            # The date in the reader's own words (not the ISO timestamp) with the year.
            await expect(page.locator("#receipt-date")).to_contain_text("2026")
            assert "T" not in (await page.locator("#receipt-date").inner_text())
            width = await page.evaluate("() => document.documentElement.scrollWidth")
            assert width <= SIZES[size]["width"], f"the receipt is wider than the {size}"
            if size == "phone":
                await page.screenshot(path=screenshot_path("receipt", tmp_path), full_page=True)
            await assert_accessible_in_both_schemes(page, f"receipt, {size}")
            await page.reload()
            await expect(page.locator("#receipt-paid")).to_have_text("$20.00")

            tampered = receipt_url[:-2] + ("AA" if not receipt_url.endswith("AA") else "BB")
            answer = await page.goto(tampered)
            assert answer is not None and answer.status == 404
            await expect(
                page.get_by_role("heading", name="This receipt link does not work")
            ).to_be_visible()
            await expect(page.locator("body")).not_to_contain_text("Dr. Rivera")
            await assert_accessible_in_both_schemes(page, f"receipt link that fails, {size}")
        finally:
            await context.close()
