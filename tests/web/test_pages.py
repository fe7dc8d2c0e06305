"""The web app's pages as a browser fetches them: the right page and status for every link
state, the security headers, the static modules."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

import vidivo.web.routes
from vidivo.mail.service import latest_email_to


async def make_link(client, host, **fields) -> dict:
    body = {"rate_per_minute": "3.00", "window_size_minutes": 10, **fields}
    response = await client.post("/v1/links", headers=host.headers, json=body)
    assert response.status_code == 201, response.text
    return response.json()["link"]


async def test_the_guest_page_explains_the_rate_and_the_holds(client, hosts):
    host = await hosts.create(display_name="Dr. Rivera")
    link = await make_link(client, host)
    page = await client.get(f"/c/{link['short_code']}")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "Video call with Dr. Rivera" in html
    assert "$3.00" in html
    assert (
        "We hold <strong>$30.00</strong> on your card at the\n  start and every 10 minutes" in html
    )
    assert 'data-payments="simulated"' in html
    assert '<label for="guest-name">Your name</label>' in html
    # The host's private label is not on the public page.
    labelled = await make_link(client, host, label="VIP only - secret")
    assert "VIP only" not in (await client.get(f"/c/{labelled['short_code']}")).text


@pytest.mark.parametrize(
    ("setup", "status", "heading"),
    [
        ("unknown", 404, "This call link does not exist"),
        ("deleted", 404, "This call link has been switched off"),
        ("expired", 410, "This call link has expired"),
        ("exhausted", 410, "This call link has been used up"),
        ("not_yet", 409, "This call link opens later"),
        ("over", 409, "This call link&#39;s time has passed"),
    ],
)
async def test_unusable_links_get_a_clear_page(client, hosts, clock, setup, status, heading):
    host = await hosts.create()
    now = clock.now()
    code = "zzzzzzzzzz"
    if setup == "deleted":
        link = await make_link(client, host)
        assert (
            await client.delete(f"/v1/links/{link['id']}", headers=host.headers)
        ).status_code == 204
        code = link["short_code"]
    elif setup == "expired":
        link = await make_link(client, host, expires_at=(now + timedelta(hours=1)).isoformat())
        clock.advance(2 * 3600)
        code = link["short_code"]
    elif setup == "exhausted":
        link = await make_link(client, host, max_uses=1)
        started = await client.post(
            f"/v1/links/{link['short_code']}/sessions",
            json={
                "guest_name": "A",
                "guest_email": "a@example.com",
                "payment_method_id": "pm_card_visa",
            },
        )
        assert started.status_code == 201, started.text
        code = link["short_code"]
    elif setup == "not_yet":
        link = await make_link(
            client,
            host,
            scheduled_start=(now + timedelta(days=1)).isoformat(),
            scheduled_end=(now + timedelta(days=1, hours=1)).isoformat(),
        )
        code = link["short_code"]
    elif setup == "over":
        link = await make_link(
            client,
            host,
            scheduled_start=(now + timedelta(hours=1)).isoformat(),
            scheduled_end=(now + timedelta(hours=2)).isoformat(),
        )
        clock.advance(3 * 3600)
        code = link["short_code"]
    page = await client.get(f"/c/{code}")
    assert page.status_code == status
    assert f"<h1>{heading}</h1>" in page.text
    assert 'id="start-form"' not in page.text


async def test_pages_carry_a_csp_that_allows_the_app_and_stripe_js_only(client):
    page = await client.get("/app")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "script-src 'self' https://js.stripe.com;" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["x-frame-options"] == "DENY"


async def test_the_app_shell_and_its_modules_are_served(client):
    assert (await client.get("/", follow_redirects=False)).headers["location"] == (
        "https://vidivo.test/app"
    )
    for module in ("api", "dashboard", "guest", "call"):
        script = await client.get(f"/static/js/{module}.js")
        assert script.status_code == 200
        assert "javascript" in script.headers["content-type"]
    call = await client.get("/call/01JN2X7N1Q6I0TSCUYZ9AELGHI")
    assert call.status_code == 200 and 'id="hang-up"' in call.text
    assert (await client.get("/static/../config.py")).status_code == 404


async def test_the_verification_email_links_to_the_dashboard(client, hosts, context):
    host = await hosts.create(verified=False)
    token = await hosts.verification_token(host.email)
    async with context.session_factory() as db:
        mail = await latest_email_to(db, host.email)
    assert f"{context.settings.public_base_url}/app?verify={token}" in mail.body


async def test_every_page_links_our_icon_and_favicon_ico_finds_it(client):
    templates = Path(vidivo.web.routes.__file__).parent / "templates"
    icon = '<link rel="icon" type="image/svg+xml" href="/static/favicon.svg">'
    assert icon in (templates / "base.html").read_text()
    pages = {t.name: t.read_text() for t in templates.glob("*.html")}
    # A partial (included into a page) is part of that page, not a page of its own.
    included = {name for name in pages if any(f'include "{name}"' in t for t in pages.values())}
    for name, text in pages.items():
        if name not in included:
            assert icon in text or '{% extends "base.html" %}' in text, name
    for path in ("/static/favicon.svg", "/favicon.ico"):
        response = await client.get(path, follow_redirects=True)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("image/svg+xml")
    # The signed-in dashboard has its own top heading (the signed-out one has "Log in").
    assert '<h1 id="dashboard-heading">' in (await client.get("/app")).text
