"""A host's account in a real browser: the bio set on the dashboard reaches the guest page; a
forgotten password is reset through the emailed link; the account is deleted."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import App

pytestmark = pytest.mark.browser
PASSWORD = "correct horse battery"
NEW_PASSWORD = "a brand new passphrase"


async def last_reset_link(app: App, database: Path) -> str:
    """The link of the reset email, read from the outbox (the log redacts tokens)."""
    for _ in range(100):
        with sqlite3.connect(database) as db:
            row = db.execute(
                "SELECT body FROM email_outbox WHERE subject = 'Reset your Vidivo password' "
                "ORDER BY id DESC LIMIT 1"
            ).fetchone()
        if row is not None:
            token = re.search(r"/reset-password\?token=([A-Za-z0-9_\-]+)", row[0])
            assert token, row[0]
            return f"{app.base}/reset-password?token={token.group(1)}"
        await asyncio.sleep(0.1)
    raise AssertionError("no reset email in the outbox")


async def log_in(page: Page, app: App, password: str) -> None:
    await page.goto(f"{app.base}/app")
    await page.fill("#login-email", "bio@example.com")
    await page.fill("#login-password", password)
    await page.click("#log-in")
    await expect(page.locator("#who")).to_have_text("Dr. Bio")


async def test_bio_password_reset_and_deletion_from_the_browser(app_server, contexts, tmp_path):
    app = app_server
    page = await contexts[0].new_page()
    await page.goto(f"{app.base}/app")
    await page.fill("#signup-name", "Dr. Bio")
    await page.fill("#signup-email", "bio@example.com")
    await page.fill("#signup-password", PASSWORD)
    await page.click("#sign-up")
    await expect(page.locator("#verify")).to_be_visible()
    await page.fill("#verify-token", app.last_verification_token())
    await page.locator("#verify-form button[type=submit]").click()
    await expect(page.locator("#verify")).to_be_hidden()
    await page.click("#start-onboarding")
    await page.get_by_role("button", name="Complete payout setup").click()
    await page.goto(f"{app.base}/app")
    await expect(page.locator("#payout-status")).to_have_text(re.compile("ready"))
    await page.click("#create-link")
    link = page.locator("#link-rows tr").first.locator("a")
    await expect(link).to_have_text(re.compile(r"/c/[a-z0-9]{10}$"))
    guest_url = await link.get_attribute("href")
    assert guest_url is not None

    await expect(page.locator("#profile-name")).to_have_value("Dr. Bio")
    await page.fill("#profile-bio", "Family doctor <b>since 2001</b>")
    await page.locator("#profile-form button[type=submit]").click()
    await expect(page.locator("#account-status")).to_have_text(re.compile("Profile saved"))
    guest = await contexts[1].new_page()
    await guest.goto(guest_url)
    await expect(guest.locator("#host-bio")).to_have_text("Family doctor <b>since 2001</b>")

    # Forgot the password: sign out, ask for a link, follow it, choose a new password.
    await page.click("#sign-out")
    await page.get_by_role("link", name="Forgot your password?").click()
    await page.fill("#forgot-email", "bio@example.com")
    await page.locator("#forgot-form button[type=submit]").click()
    await expect(page.locator("#flash")).to_have_text(re.compile("on its way"))
    await page.goto(await last_reset_link(app, tmp_path / "data" / "vidivo.sqlite3"))
    await page.fill("#reset-password", NEW_PASSWORD)
    await page.fill("#reset-password-again", NEW_PASSWORD)
    await page.locator("#reset-form button[type=submit]").click()
    await expect(page.locator("#flash")).to_have_text(re.compile("password is changed"))
    await log_in(page, app, NEW_PASSWORD)

    await page.check("#delete-confirm")
    await page.locator("#delete-form button[type=submit]").click()
    await expect(page.locator("#login-form")).to_be_visible()
    await page.fill("#login-email", "bio@example.com")
    await page.fill("#login-password", NEW_PASSWORD)
    await page.click("#log-in")
    await expect(page.locator("#login-error")).to_have_text(re.compile("incorrect"))
    await guest.goto(guest_url)
    await expect(guest.get_by_role("heading", name="This call link does not exist")).to_be_visible()
