"""`/docs` in a real browser: the API reference renders from this origin's own files, under the
app's Content-Security-Policy, with nothing fetched from anywhere else."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, ConsoleMessage, Request, expect

from tests.support import Server, free_port, start_server, stop_server

pytestmark = pytest.mark.browser


@pytest.fixture
def docs_server(tmp_path: Path) -> Iterator[str]:
    base = f"http://127.0.0.1:{free_port()}"
    server: Server = start_server(tmp_path / "data", base)
    yield base
    stop_server(server)


async def test_docs_page_lists_the_operations_without_any_csp_violation(
    browser: Browser, docs_server: str
) -> None:
    context = await browser.new_context()
    page = await context.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(_describe(message)))
    page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
    elsewhere: list[str] = []

    def note_foreign(request: Request) -> None:
        if not request.url.startswith((docs_server, "data:", "blob:")):
            elsewhere.append(request.url)

    page.on("request", note_foreign)
    await page.add_init_script(
        "window.cspViolations = [];"
        "document.addEventListener('securitypolicyviolation',"
        " (e) => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));"
    )

    response = await page.goto(f"{docs_server}/docs")
    assert response is not None and response.status == 200
    operation = page.locator(".opblock-get").filter(
        has=page.locator('[data-path="/v1/links/{short_code}"]')
    )
    await expect(operation.first).to_be_visible(timeout=15_000)
    await expect(operation.first).to_contain_text("GET")
    await expect(page.locator(".opblock-post", has_text="/v1/links").first).to_be_visible()
    await page.wait_for_load_state("networkidle")

    violations = [line for line in console if "Content Security Policy" in line or "error" in line]
    assert violations == [], "\n".join(console)
    assert await page.evaluate("window.cspViolations") == []
    assert elsewhere == []
    await context.close()


def _describe(message: ConsoleMessage) -> str:
    return f"{message.type}: {message.text}"
