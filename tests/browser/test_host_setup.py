"""A new host's way from sign-up to a first link in a real browser, at phone and desktop size:
the 1-2-3 checklist, the emailed link that verifies on opening, payout setup that comes back
to the dashboard, link options, QR code and share; and the pages pass axe-core in light and
dark."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Locator, Page, expect

from tests.browser.accessibility import assert_accessible_in_both_schemes
from tests.browser.conftest import App, screenshot_path

pytestmark = pytest.mark.browser
PASSWORD = "correct horse battery"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
SIZES = pytest.mark.parametrize("size", ["phone", "desktop"])
VIEWPORTS = {"phone": PHONE, "desktop": DESKTOP}


async def new_page(browser: Browser, size: str, **options: object) -> tuple[BrowserContext, Page]:
    context = await browser.new_context(viewport=VIEWPORTS[size], **options)  # type: ignore[arg-type]
    return context, await context.new_page()


def ready_host(app: App, email: str, name: str = "Dr. Rivera") -> str:
    """A host who has verified the email and set up payouts, through the API; its token."""
    with httpx.Client(base_url=app.base) as http:
        signed = http.post(
            "/v1/auth/signup", json={"email": email, "password": PASSWORD, "display_name": name}
        )
        assert signed.status_code == 201, signed.text
        verified = http.post("/v1/auth/verify-email", json={"token": app.last_verification_token()})
        assert verified.status_code == 200, verified.text
        tokens = http.post("/v1/auth/token", json={"email": email, "password": PASSWORD}).json()
        auth = {"Authorization": f"Bearer {tokens['access_token']}"}
        onboarding = http.post("/v1/host/payouts/onboarding", headers=auth)
        assert onboarding.status_code == 200, onboarding.text
        done = http.post(onboarding.json()["url"].replace(app.base, ""))
        assert done.status_code == 303, done.text
        return str(tokens["access_token"])


async def log_in(page: Page, app: App, email: str) -> None:
    await page.goto(f"{app.base}/app")
    await page.fill("#login-email", email)
    await page.fill("#login-password", PASSWORD)
    await page.click("#log-in")
    await expect(page.locator("#who")).to_have_text("Dr. Rivera")


def step(page: Page, name: str) -> Locator:
    return page.locator(f"#step-{name}")


@SIZES
async def test_a_new_host_goes_through_the_checklist_to_a_first_link(
    app_server, browser, tmp_path, size
):
    app = app_server
    context, page = await new_page(browser, size)
    await page.goto(f"{app.base}/app")
    await expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    await assert_accessible_in_both_schemes(page, f"signed-out dashboard, {size}")

    await page.fill("#signup-name", "Dr. Rivera")
    await page.fill("#signup-email", "rivera@example.com")
    await page.fill("#signup-password", PASSWORD)
    await page.click("#sign-up")
    # Step 1 of 3: the link form waits for a verified email, and says so.
    await expect(page.locator("#setup-progress")).to_have_text("0 of 3 done")
    await expect(step(page, "verify")).to_have_attribute("data-done", "false")
    await expect(step(page, "verify")).to_contain_text("Open the link we emailed to rivera@")
    await expect(page.locator("#create-link")).to_be_disabled()
    await expect(page.locator("#link-rate")).to_be_disabled()
    await expect(page.locator("#link-locked")).to_have_text(re.compile("^Verify your email first"))
    await expect(page.locator("#payout-status")).to_contain_text("Not set up")
    await assert_accessible_in_both_schemes(page, f"new host's dashboard, {size}")

    # The emailed link verifies on opening: no token to copy.
    await page.goto(f"{app.base}/app?verify={app.last_verification_token()}")
    await expect(page.locator("#flash")).to_have_text("Your email is verified.")
    await expect(step(page, "verify")).to_have_attribute("data-done", "true")
    await expect(page.locator("#verify")).to_be_hidden()
    await expect(page.locator("#setup-progress")).to_have_text("1 of 3 done")
    assert "verify=" not in page.url
    await expect(page.locator("#link-locked")).to_have_text(re.compile("^Set up payouts first"))

    # Step 2: payout setup, and back on the dashboard with a notice (not a dead end).
    await step(page, "payouts").get_by_role("button", name="Set up payouts").click()
    await expect(page.get_by_role("heading", name="Payout setup")).to_be_visible()
    await assert_accessible_in_both_schemes(page, f"simulated payout setup, {size}")
    await page.get_by_role("button", name="Complete payout setup").click()
    await expect(page).to_have_url(re.compile(r"/app$"))
    await expect(page.get_by_role("heading", name="Payout setup finished")).to_be_visible()
    await expect(page.locator("#payout-status")).to_contain_text("ready")
    await expect(page.locator("#payout-status")).not_to_contain_text("acct_")
    await expect(step(page, "payouts")).to_have_attribute("data-done", "true")
    await expect(page.locator("#setup-progress")).to_have_text("2 of 3 done")
    await expect(page.locator("#create-link")).to_be_enabled()
    await expect(page.locator("#link-locked")).to_be_hidden()

    # Step 3: the first link; then the checklist has nothing left to show.
    await page.fill("#link-rate", "4.00")
    await page.fill("#link-label", "Office hours")
    await page.click("#create-link")
    row = page.locator("#link-rows tr").first
    await expect(row.locator("a")).to_have_text(re.compile(r"/c/[a-z0-9]{10}$"))
    await expect(row).to_contain_text("Office hours")
    await expect(page.locator("#setup")).to_be_hidden()
    # The form starts afresh: no label left over from the last link.
    await expect(page.locator("#link-label")).to_have_value("")
    await expect(page.locator("#link-rate")).to_have_value("2.50")
    await assert_accessible_in_both_schemes(page, f"set-up dashboard, {size}")
    await context.close()


@SIZES
async def test_link_options_show_on_the_row_and_a_link_has_a_qr_code_and_share(
    app_server, browser, tmp_path, size
):
    app = app_server
    ready_host(app, "rivera@example.com")
    # A browser with a share sheet: what the page hands to it is recorded.
    context, page = await new_page(browser, size)
    await context.add_init_script("navigator.share = async (data) => { window.shared = data; };")
    await log_in(page, app, "rivera@example.com")
    # Verified and paid out: the checklist has one step left.
    await expect(page.locator("#setup-progress")).to_have_text("2 of 3 done")

    # Options live under "More options"; a wrong date is explained beside its field.
    await page.get_by_text("More options").click()
    await page.fill("#link-max-uses", "2")
    await page.fill("#link-start", "2031-05-01T10:00")
    await page.fill("#link-end", "2031-05-01T09:00")
    await page.click("#create-link")
    await expect(page.locator("#link-end-error")).to_have_text(
        "Choose a closing time after the opening time."
    )
    await page.fill("#link-end", "2031-05-01T11:00")
    await page.fill("#link-expires", "2031-06-01T00:00")
    await page.click("#create-link")
    row = page.locator("#link-rows tr").first
    await expect(row.locator("[data-uses]")).to_have_text("0 of 2")
    await expect(row.locator('[data-meta="scheduled"]')).to_contain_text("2031")
    await expect(row.locator('[data-meta="expires"]')).to_contain_text("2031")
    # Cleared, options closed again.
    await expect(page.locator("#link-max-uses")).to_have_value("")
    await expect(page.locator("#link-options")).not_to_have_attribute("open", "")
    # The row says the same after a reload (the list is read back from the server).
    await page.reload()
    await expect(row.locator('[data-meta="scheduled"]')).to_contain_text("2031")
    await expect(row.locator("[data-uses]")).to_have_text("0 of 2")

    url = await row.locator("a").get_attribute("href")
    assert url is not None
    code = url.rsplit("/", 1)[1]
    await row.get_by_role("button", name=f"QR code of link {code}").click()
    qr = row.get_by_role("img", name=f"QR code that opens {url}")
    await expect(qr).to_be_visible()
    # The picture loads (decode() waits for it): it is our SVG, not a broken image.
    assert await qr.evaluate("img => img.decode().then(() => img.naturalWidth)") > 0
    # Nothing spills sideways, on a phone either.
    assert await page.evaluate("document.documentElement.scrollWidth <= innerWidth")

    await row.get_by_role("button", name=f"Share link {code}").click()
    shared = await page.wait_for_function("window.shared")
    assert (await shared.json_value())["url"] == url
    await assert_accessible_in_both_schemes(page, f"links with options and QR, {size}")
    await context.close()

    # Without a share sheet, Share copies the address.
    context, page = await new_page(browser, size)
    await context.grant_permissions(["clipboard-read", "clipboard-write"])
    await log_in(page, app, "rivera@example.com")
    share = page.get_by_role("button", name=f"Share link {code}")
    await share.click()
    await expect(share).to_have_text("Copied")
    assert await page.evaluate("navigator.clipboard.readText()") == url
    await context.close()


async def test_a_verification_link_that_fails_says_so_and_keeps_the_form(app_server, browser):
    app = app_server
    context, page = await new_page(browser, "phone")
    await page.goto(f"{app.base}/app")
    await page.fill("#signup-name", "Dr. Rivera")
    await page.fill("#signup-email", "rivera@example.com")
    await page.fill("#signup-password", PASSWORD)
    await page.click("#sign-up")
    await expect(page.locator("#setup-progress")).to_have_text("0 of 3 done")
    await page.goto(f"{app.base}/app?verify=not-a-real-token")
    await expect(page.locator("#flash")).to_contain_text("This verification link did not work")
    await expect(page.locator("#verify")).to_be_visible()
    await expect(page.locator("#verify-token")).to_have_value("not-a-real-token")
    # The manual form still works with the right token.
    await page.fill("#verify-token", app.last_verification_token())
    await page.locator("#verify-form button[type=submit]").click()
    await expect(page.locator("#verify")).to_be_hidden()
    await expect(step(page, "verify")).to_have_attribute("data-done", "true")
    await context.close()


def guest_calls(app: App, code: str, name: str, key: str) -> tuple[str, str]:
    with httpx.Client(base_url=app.base) as http:
        started = http.post(
            f"/v1/links/{code}/sessions",
            json={
                "guest_name": name,
                "guest_email": "guest@example.com",
                "payment_method_id": "pm_card_visa",
            },
            headers={"Idempotency-Key": key},
        )
        assert started.status_code == 201, started.text
        body = started.json()
        return body["session"]["id"], body["guest_token"]


def host_with_links_and_calls(app: App) -> None:
    """Two links; a call the host declined and one the guest cancelled."""
    token = ready_host(app, "rivera@example.com")
    auth = {"Authorization": f"Bearer {token}"}
    codes = []
    with httpx.Client(base_url=app.base) as http:
        for label, rate, uses in (("Office hours", "2.50", None), ("Tax review", "4.00", 1)):
            body = {"rate_per_minute": rate, "window_size_minutes": 10, "label": label}
            if uses:
                body["max_uses"] = uses
            made = http.post(
                "/v1/links", json=body, headers={**auth, "Idempotency-Key": label.replace(" ", "-")}
            )
            assert made.status_code == 201, made.text
            codes.append(made.json()["link"]["short_code"])
        declined, _ = guest_calls(app, codes[0], "Alex Moreno", "call-1")
        assert http.post(f"/v1/sessions/{declined}/decline", headers=auth).status_code == 200
        cancelled, guest = guest_calls(app, codes[1], "Sam Lee", "call-2")
        ended = http.post(
            f"/v1/sessions/{cancelled}/end", headers={"Authorization": f"Bearer {guest}"}
        )
        assert ended.status_code == 200, ended.text


@SIZES
async def test_the_dashboard_of_a_host_with_links_and_calls(app_server, browser, tmp_path, size):
    app = app_server
    host_with_links_and_calls(app)
    context, page = await new_page(browser, size)
    await log_in(page, app, "rivera@example.com")
    await expect(page.locator("#link-rows tr")).to_have_count(2)
    await expect(page.locator("#session-rows tr")).to_have_count(2)
    if size == "desktop":
        # Two columns: the links beside the account's side column, not under it.
        links = await page.locator("#links").bounding_box()
        side = await page.locator("#dashboard-side").bounding_box()
        assert links and side and side["x"] > links["x"] + links["width"] - 1
    else:
        # On a phone each table row is a block that keeps its column's name as a label.
        first_cell = page.locator("#link-rows tr").first.locator("td").nth(1)
        assert await first_cell.get_attribute("data-label") == "Rate"
        label = await first_cell.evaluate("td => getComputedStyle(td, '::before').content")
        assert label == '"Rate"'
        # Rows other modules add (the call history) are labelled the same way.
        guest_cell = page.locator("#session-rows tr").first.locator('td[data-label="Guest"]')
        await expect(guest_cell).to_have_text(re.compile("Sam Lee|Alex Moreno"))
        label = await guest_cell.evaluate("td => getComputedStyle(td, '::before').content")
        assert label == '"Guest"'
        assert await page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    name = "dashboard" if size == "desktop" else "dashboard-phone"
    await page.screenshot(path=screenshot_path(name, tmp_path), full_page=True)
    if size == "desktop":
        await page.emulate_media(color_scheme="dark")
        await page.screenshot(path=screenshot_path("dashboard-dark", tmp_path), full_page=True)
    await assert_accessible_in_both_schemes(page, f"dashboard with links and calls, {size}")
    await context.close()


@SIZES
async def test_account_and_message_pages_are_accessible(app_server, browser, size):
    app = app_server
    context, page = await new_page(browser, size)
    for path, heading in (
        ("/reset-password", "Forgot your password?"),
        ("/reset-password?token=abc", "Choose a new password"),
        ("/confirm-email?token=abc", "Confirm your new email"),
        ("/c/zzzzzzzzzz", "This call link does not exist"),
    ):
        await page.goto(f"{app.base}{path}")
        await expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        await assert_accessible_in_both_schemes(page, f"{path}, {size}")
    # A guest's message page does not send them to the hosts' log-in page.
    await expect(page.locator('a[href="/app"]')).to_have_count(0)
    await context.close()
