"""The host dashboard keeps up with what changes under it: a call that stops ringing,
links that were deactivated."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import APIRequestContext, expect

from tests.browser.conftest import App
from tests.browser.test_calls import host_signs_up_and_makes_a_link

pytestmark = pytest.mark.browser


async def guest_starts_a_call(guest: APIRequestContext, app: App, url: str) -> tuple[str, str]:
    """The session id and guest token of a call started on the link, as the guest page does."""
    code = url.rsplit("/", 1)[1]
    response = await guest.post(
        f"{app.base}/v1/links/{code}/sessions",
        data={
            "guest_name": "Alex",
            "guest_email": "alex@example.com",
            "payment_method_id": "pm_card_visa",
        },
        headers={"Idempotency-Key": "browser-dashboard-cancel"},
    )
    assert response.status == 201, await response.text()
    started = await response.json()
    return started["session"]["id"], started["guest_token"]


async def test_the_incoming_call_card_goes_when_the_guest_cancels(app_server, contexts, tmp_path):
    app = app_server
    host = await contexts[0].new_page()
    url = await host_signs_up_and_makes_a_link(app, host, tmp_path)
    await expect(host.locator("body")).to_have_attribute("data-listening", "true")

    guest = contexts[1].request
    session_id, guest_token = await guest_starts_a_call(guest, app, url)
    card = host.locator(f'#incoming-list [data-session-id="{session_id}"]')
    await expect(card).to_contain_text("Alex is calling")

    ended = await guest.post(
        f"{app.base}/v1/sessions/{session_id}/end",
        headers={"Authorization": f"Bearer {guest_token}"},
    )
    assert ended.status == 200, await ended.text()
    await expect(card).to_have_count(0)
    await expect(host.locator("#incoming")).to_be_hidden()
    assert re.search(r"/app$", host.url)


async def test_a_deactivated_link_stays_marked_inactive_after_a_reload(
    app_server, contexts, tmp_path
):
    app = app_server
    host_context, guest_context = contexts
    await host_context.grant_permissions(["clipboard-read", "clipboard-write"])
    host = await host_context.new_page()
    url = await host_signs_up_and_makes_a_link(app, host, tmp_path)
    code = url.rsplit("/", 1)[1]
    row = host.locator("#link-rows tr", has=host.locator(f'a[href="{url}"]'))

    # "Copied" confirms the copy, then the button reads "Copy" again.
    copy = row.get_by_role("button", name=f"Copy link {code}")
    await copy.click()
    await expect(copy).to_have_text("Copied")
    await expect(copy).to_have_text("Copy", timeout=5000)

    await host.click("#create-link")  # a second link, which stays active
    await expect(host.locator("#link-rows tr")).to_have_count(2)
    host.on("dialog", lambda dialog: dialog.accept())
    await row.get_by_role("button", name=f"Deactivate link {code}").click()
    await expect(host.locator("#flash")).to_have_text("Link deactivated.")
    await expect(row.locator(".badge")).to_have_text("Inactive")
    await expect(row.get_by_role("button")).to_have_count(0)
    # After a reload the list holds active links only, unless deactivated ones are asked for.
    await host.reload()
    await expect(host.locator("#who")).to_have_text("Dr. Rivera")
    await expect(host.locator("#link-rows tr")).to_have_count(1)  # the other, active link
    await expect(row).to_have_count(0)
    await host.get_by_label("Show deactivated links too").check()
    await expect(row.locator(".badge")).to_have_text("Inactive")
    await expect(row.get_by_role("button")).to_have_count(0)

    # The guest who opens it learns its host switched it off, not that it was mistyped.
    guest = await guest_context.new_page()
    await guest.goto(url)
    await expect(
        guest.get_by_role("heading", name="This call link has been switched off")
    ).to_be_visible()
