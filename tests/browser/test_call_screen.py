"""The call screen at a phone's and a desktop's size: the guest waits with a countdown, the
call fills the screen with the self view inset, the toggles show their state on both sides,
the chat goes both ways, the network and the money are on screen, and every ending is one
screen that says why, what was charged and where to go next, the same after a reload.

The host and the link are made over the API (tests/browser/test_card_authentication.py), and
the guest's call is started over the API from the link's page: these tests are about the call
screen, the guest page and the dashboard have their own tests."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from tests.browser.accessibility import assert_accessible_in_both_schemes
from tests.browser.conftest import App, screenshot_path
from tests.browser.test_calls import video_flows
from tests.browser.test_card_authentication import host_with_link

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
SIZES = [pytest.param(PHONE, id="phone"), pytest.param(DESKTOP, id="desktop")]
# The guest on a desktop chose an audio-only call in the device check (devices.js keeps it).
CALLS = [
    pytest.param(PHONE, False, id="phone"),
    pytest.param(DESKTOP, True, id="desktop-guest-audio-only"),
]
HOST_ACCOUNT = {"email": "sca@example.com", "password": "correct horse battery"}  # host_with_link's


def host_tokens(app: App) -> dict[str, Any]:
    response = httpx.post(f"{app.base}/v1/auth/token", json=HOST_ACCOUNT)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def people(
    browser: Browser, app: App, viewport: dict[str, int], guest_audio_only: bool = False
) -> list[BrowserContext]:
    """The host (signed in: its tokens where the dashboard keeps them) and the guest."""
    stored = json.dumps(json.dumps(host_tokens(app)))
    host, guest = [
        await browser.new_context(permissions=["camera", "microphone"], viewport=viewport)
        for _ in range(2)
    ]
    await host.add_init_script(f"localStorage.setItem('vidivo.host', {stored})")
    if guest_audio_only:
        choice = json.dumps(json.dumps({"audioOnly": True}))
        await guest.add_init_script(f"localStorage.setItem('vidivo.devices', {choice})")
    return [host, guest]


def start_session(app: App, code: str, extra: dict[str, Any]) -> tuple[str, str]:
    body = {
        "guest_name": "Alex",
        "guest_email": "alex@example.com",
        "payment_method_id": "pm_card_visa",
        **extra,
    }
    started = httpx.post(f"{app.base}/v1/links/{code}/sessions", json=body)
    assert started.status_code == 201, started.text
    return started.json()["session"]["id"], started.json()["guest_token"]


async def guest_starts_a_call(app: App, guest: Page, url: str, **extra: Any) -> str:
    """From the link's page, as its form would: the call is started, then the call page opens."""
    await guest.goto(url)
    session_id, token = start_session(app, url.rsplit("/", 1)[1], extra)
    await guest.evaluate(
        """([id, token]) => {
             sessionStorage.setItem(`vidivo.guest.${id}`, token);
             location.assign(`/call/${id}`);
           }""",
        [session_id, token],
    )
    await guest.wait_for_url(re.compile(f"/call/{session_id}$"))
    return session_id


def host_answers(app: App, session_id: str, answer: str) -> None:
    token = host_tokens(app)["access_token"]
    response = httpx.post(
        f"{app.base}/v1/sessions/{session_id}/{answer}",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text


def seconds_of(text: str) -> int:
    minutes, seconds = re.search(r"(\d+):(\d\d)", text).groups()  # type: ignore[union-attr]
    return int(minutes) * 60 + int(seconds)


async def open_chat(page: Page) -> None:
    """On a phone the chat is a sheet opened from the controls; on a desktop it is beside."""
    toggle = page.get_by_role("button", name="Chat")
    if await toggle.is_visible():
        await toggle.click()
    await expect(page.get_by_label("Message", exact=True)).to_be_enabled()


@pytest.mark.parametrize(("viewport", "audio_only"), CALLS)
async def test_a_call_on_the_call_screen(
    app_server: App, browser: Browser, tmp_path: Path, viewport: dict[str, int], audio_only: bool
):
    app = app_server
    url = host_with_link(app)  # 2.50 a minute, 5-minute windows
    contexts = await people(browser, app, viewport, audio_only)
    host, guest = [await context.new_page() for context in contexts]
    size = "phone" if viewport == PHONE else "desktop"
    try:
        # Waiting: a countdown with the hold's amount, and what happens next.
        session_id = await guest_starts_a_call(app, guest, url, max_spend="20.00")
        countdown = guest.locator("#join-countdown")
        await expect(countdown).to_contain_text(
            re.compile(
                r"Dr\. Rivera has \d+:\d\d to join; your \$12\.50 hold is released otherwise"
            )
        )
        await expect(guest.locator("#waiting")).to_contain_text("nothing is charged while you wait")
        first = seconds_of(await countdown.inner_text())
        assert 590 <= first <= 600, first
        await guest.wait_for_timeout(2100)
        assert seconds_of(await countdown.inner_text()) < first
        # The waiting card leaves the self view uncovered (on a phone it sits below it).
        card = await guest.locator("#waiting").bounding_box()
        self_view = "#self-audio-only" if audio_only else "#local-video"
        own = await guest.locator(self_view).bounding_box()
        assert card and own
        assert (
            own["y"] + own["height"] <= card["y"]
            or own["x"] >= card["x"] + card["width"]
            or own["y"] >= card["y"] + card["height"]
        ), (own, card)
        if size == "phone":
            await guest.screenshot(path=screenshot_path("waiting", tmp_path))
        await assert_accessible_in_both_schemes(guest, f"call, waiting, {size}")

        # Live: the other party's video fills the screen; the self view is a small inset.
        host_answers(app, session_id, "accept")
        await host.goto(f"{app.base}/call/{session_id}")
        for page in (host, guest):
            await expect(page.locator("#call")).to_have_attribute(
                "data-connection", "connected", timeout=20000
            )
        await expect(guest.locator("#call-with")).to_have_text("Live with Dr. Rivera")
        await expect(host.locator("#call-with")).to_have_text("Live with Alex")
        await video_flows(guest)
        remote = await guest.locator("#remote-video").bounding_box()
        inset = await guest.locator(self_view).bounding_box()
        assert remote and inset
        assert (remote["x"], remote["y"], remote["height"]) == (0, 0, viewport["height"])
        assert remote["width"] >= 0.7 * viewport["width"], remote  # beside the chat when wide
        assert inset["width"] <= 0.3 * remote["width"], inset
        assert inset["width"] * inset["height"] <= 0.08 * remote["width"] * remote["height"]
        assert inset["x"] + inset["width"] <= remote["width"], inset

        # The money: the next hold with its amount (the cap leaves 3 minutes), the cap so far.
        await expect(guest.locator("#next-hold")).to_have_text(
            re.compile(r"^Next \$7\.50 hold in \d:\d\d$")
        )
        await expect(guest.locator("#spending-limit")).to_have_text("Limit $20.00 · $2.50 so far")
        await expect(guest.locator("#network-text")).to_have_text(
            re.compile(r"^Network: (good|fair|poor)$"), timeout=10000
        )

        # The toggles show their state here and the other side sees it.
        mute, camera = guest.locator("#mute"), guest.locator("#camera")
        peer_media = host.locator("#peer-media")
        if audio_only:  # no camera at all: the host sees it off, the guest sees the host
            await expect(camera).to_be_disabled()
            await expect(guest.locator("#camera-caption")).to_have_text("Audio only")
            await expect(peer_media).to_have_text("Alex: camera off")
            await expect(host.locator("#call")).to_have_attribute("data-remote-video", "off")
        await mute.click()
        await expect(mute).to_have_attribute("aria-pressed", "true")
        await expect(guest.locator("#mute-caption")).to_have_text("Muted")
        await expect(peer_media).to_have_text(re.compile(r"^Alex: muted"))
        if not audio_only:
            await camera.click()
            await expect(camera).to_have_attribute("aria-pressed", "true")
            await expect(guest.locator("#camera-caption")).to_have_text("Camera off")
            await expect(host.locator("#call")).to_have_attribute("data-remote-video", "off")
        await expect(peer_media).to_have_text("Alex: muted, camera off")  # both at once
        if not audio_only:
            await camera.click()
            await expect(host.locator("#call")).to_have_attribute("data-remote-video", "on")
        await mute.click()
        await expect(mute).to_have_attribute("aria-pressed", "false")
        await expect(peer_media).to_have_text("Alex: camera off" if audio_only else "")

        # The chat goes both ways, with who sent what.
        await open_chat(guest)
        await guest.get_by_label("Message", exact=True).fill("Can you hear me?")
        await guest.get_by_label("Message", exact=True).press("Enter")
        await open_chat(host)
        host_log = host.get_by_role("log", name="Chat messages")
        await expect(host_log).to_contain_text("Alex")
        await expect(host_log).to_contain_text("Can you hear me?")
        await host.get_by_label("Message", exact=True).fill("Loud and clear")
        await host.get_by_role("button", name="Send").click()
        guest_log = guest.get_by_role("log", name="Chat messages")
        await expect(guest_log.locator("li").last).to_contain_text("Dr. Rivera")
        await expect(guest_log.locator("li").last).to_contain_text("Loud and clear")
        await assert_accessible_in_both_schemes(guest, f"call, live with the chat open, {size}")
        if size == "phone":
            await guest.keyboard.press("Escape")  # the sheet closes: the call fills the screen
        name = "in-call" if size == "phone" else "in-call-desktop"
        await guest.screenshot(path=screenshot_path(name, tmp_path))

        # The end: one screen, in words, with the real totals, the same after a reload.
        await guest.get_by_role("button", name="Hang up").click()
        for page in (guest, host):
            await expect(page.locator("#end-screen")).to_be_visible()
            await expect(page.locator("#stage")).to_be_hidden()
            await expect(page.locator("#end-charged")).to_have_text("$2.50")
        await expect(guest.locator("#call-status")).to_have_text("The call has ended: you hung up.")
        await expect(host.locator("#call-status")).to_have_text("The call has ended: Alex hung up.")
        await expect(guest.locator("#end-hold")).to_contain_text(
            "The rest of your hold, $10.00, was released."
        )
        await expect(guest.locator("#end-hold")).to_contain_text("a few days")
        code = url.rsplit("/", 1)[1]
        await expect(guest.get_by_role("link", name="Call again")).to_have_attribute(
            "href", f"/c/{code}"
        )
        await expect(host.get_by_role("link", name="Back to the dashboard")).to_have_attribute(
            "href", "/app"
        )
        shown_time = await guest.locator("#end-time").inner_text()
        await guest.reload()
        await expect(guest.locator("#end-charged")).to_have_text("$2.50")
        await expect(guest.locator("#end-time")).to_have_text(shown_time)
        await expect(guest.locator("#receipt-total")).to_have_text("$2.50")
        await expect(guest.get_by_role("link", name="Call again")).to_be_visible()
        if size == "phone":
            await guest.screenshot(path=screenshot_path("end-screen", tmp_path), full_page=True)
        await assert_accessible_in_both_schemes(guest, f"call, end screen, guest, {size}")
        await assert_accessible_in_both_schemes(host, f"call, end screen, host, {size}")
    finally:
        for context in contexts:
            await context.close()


@pytest.mark.parametrize("viewport", SIZES)
async def test_a_host_decline_ends_on_a_screen_that_says_why(
    app_server: App, browser: Browser, viewport
):
    url = host_with_link(app_server)
    context = await browser.new_context(permissions=["camera", "microphone"], viewport=viewport)
    guest = await context.new_page()
    try:
        session_id = await guest_starts_a_call(app_server, guest, url)
        await expect(guest.locator("#join-countdown")).to_contain_text("to join")
        await expect(guest.get_by_role("button", name="Cancel the call")).to_be_visible()
        host_answers(app_server, session_id, "decline")
        await expect(guest.locator("#end-screen")).to_be_visible()
        await expect(guest.locator("#stage")).to_be_hidden()
        await expect(guest.get_by_role("heading", name="The call did not start")).to_be_visible()
        await expect(guest.locator("#call-status")).to_have_text(
            "Dr. Rivera declined the call, so it did not start. The hold on your card was "
            "released: nothing was charged."
        )
        await expect(guest.locator("#end-hold")).to_have_text(
            "Nothing was charged. Your hold of $12.50 was released. Vidivo releases it now; "
            "your bank may take a few days to remove it from your statement."
        )
        code = url.rsplit("/", 1)[1]
        await expect(guest.get_by_role("link", name="Try again")).to_have_attribute(
            "href", f"/c/{code}"
        )
        ended_controls = guest.get_by_role("button", name=re.compile("Hang up|Cancel the call"))
        await expect(ended_controls).to_have_count(0)
        size = "phone" if viewport == PHONE else "desktop"
        await assert_accessible_in_both_schemes(guest, f"call, declined by the host, {size}")
    finally:
        await context.close()
