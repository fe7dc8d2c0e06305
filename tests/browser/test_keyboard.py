"""Keyboard only, at a phone's and a desktop's size: the guest checks the devices, fills in
the form and starts the call with Tab, Enter and Space; the host accepts it, checks the devices
and joins the same way. Every control that takes the focus on the way shows it (an outline)."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Browser, Locator, Page, expect

from tests.browser.conftest import App
from tests.browser.test_host_calls import SIZES, host_with_link, open_dashboard

pytestmark = pytest.mark.browser

FOCUS = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  return {
    name: (el.getAttribute('aria-label') || el.labels?.[0]?.textContent || el.textContent
           || el.name || el.id || el.tagName).trim().slice(0, 60),
    visible: el.matches(':focus-visible'),
    outline: style.outlineStyle,
    width: parseFloat(style.outlineWidth),
  };
}"""


async def focus_shows(page: Page) -> str:
    """The focused control's name, after checking that the focus is drawn around it."""
    focused = await page.evaluate(FOCUS)
    assert focused is not None, "the focus left the page's controls"
    assert focused["visible"], f"{focused['name']!r} has the focus without :focus-visible"
    assert focused["outline"] != "none" and focused["width"] >= 2, (
        f"the focus on {focused['name']!r} is not visible: {focused}"
    )
    return str(focused["name"])


async def tab_to(page: Page, target: Locator, most: int = 60) -> list[str]:
    """Press Tab until `target` has the focus, checking the focus ring on each stop."""
    stops: list[str] = []
    for _ in range(most):
        await page.keyboard.press("Tab")
        stops.append(await focus_shows(page))
        if await target.evaluate("el => el === document.activeElement"):
            return stops
    raise AssertionError(f"Tab never reached {target}; it went through {stops}")


@pytest.mark.parametrize("size", SIZES)
async def test_the_guest_starts_and_the_host_accepts_with_the_keyboard_only(
    app_server: App, browser: Browser, size: dict[str, int]
):
    host = host_with_link(app_server)
    dashboard = await open_dashboard(browser, app_server, host, size)
    context = await browser.new_context(permissions=["camera", "microphone"], viewport=size)
    guest = await context.new_page()
    try:
        await guest.goto(f"{app_server.base}/c/{host.link['short_code']}")
        heading = guest.get_by_role("heading", name="Video call with Dr. Rivera")
        await expect(heading).to_be_visible()

        # The device check: Enter starts it, Space switches audio only on and off again.
        stops = await tab_to(guest, guest.get_by_role("button", name="Test camera and microphone"))
        assert stops[0] == "Skip to content", stops
        await guest.keyboard.press("Enter")
        await expect(guest.locator(".device-check")).to_have_attribute("data-state", "ready")
        audio_only = guest.get_by_role("switch", name="Audio only")
        await tab_to(guest, audio_only)
        await guest.keyboard.press("Space")
        await expect(audio_only).to_be_checked()
        await guest.keyboard.press("Space")
        await expect(audio_only).not_to_be_checked()

        # The form: typed into, then started with Enter on the button.
        await tab_to(guest, guest.get_by_label("Your name"))
        await guest.keyboard.type("Alex")
        await guest.keyboard.press("Tab")
        await focus_shows(guest)
        await guest.keyboard.type("alex@example.com")
        start = guest.get_by_role("button", name="Start call")
        stops = await tab_to(guest, start)
        assert stops[-1] == "Start call", stops
        await guest.keyboard.press("Enter")
        await guest.wait_for_url(re.compile(r"/call/[^/]+$"))
        await expect(guest.locator("#join-countdown")).to_contain_text("to join")

        # The host: Tab to Accept, Enter; the device check opens with the focus on Join now.
        call = dashboard.locator("#incoming-list .incoming-call").first
        await expect(call).to_contain_text("Alex is calling")
        await tab_to(dashboard, call.get_by_role("button", name="Accept"), most=120)
        await dashboard.keyboard.press("Enter")
        join = call.get_by_role("button", name="Join now")
        await expect(join).to_be_focused()
        assert await focus_shows(dashboard) == "Join now"
        await dashboard.keyboard.press("Space")
        await dashboard.wait_for_url(re.compile(r"/call/[^/]+$"))
        await expect(guest.locator("#call-with")).to_have_text(
            "Live with Dr. Rivera", timeout=20000
        )

        # In the call, the controls take the focus in turn, each with its ring.
        mute = guest.locator("#mute")
        await tab_to(guest, mute)
        await guest.keyboard.press("Space")
        await expect(mute).to_have_attribute("aria-pressed", "true")
        await focus_shows(guest)
    finally:
        await context.close()
        await dashboard.context.close()
