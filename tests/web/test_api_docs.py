"""`/docs` over HTTP: the page and Swagger UI's files come from this origin, under the app's
strict Content-Security-Policy; ReDoc (CDN-only) is not served."""

from __future__ import annotations

import re


async def test_docs_page_loads_swagger_ui_from_this_origin_only(client):
    page = await client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources, page.text
    assert all(source.startswith("/") for source in sources), sources
    assert "<script>" not in page.text  # no inline script: the CSP forbids it
    csp = page.headers["content-security-policy"]
    assert "script-src 'self' https://js.stripe.com;" in csp
    assert "unsafe-inline" not in csp
    for source in sources:
        asset = await client.get(source)
        assert asset.status_code == 200, source


async def test_redoc_and_the_cdn_oauth_helper_are_not_served(client):
    assert (await client.get("/redoc")).status_code == 404
    assert (await client.get("/docs/oauth2-redirect")).status_code == 404
