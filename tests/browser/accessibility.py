"""axe-core in the browser tests: a page passes when axe finds no serious or critical
violation. axe-core comes bundled in the `axe-playwright-python` package (a dev dependency),
never as a file copied into this repository."""

from __future__ import annotations

from typing import Any

from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Page

_AXE = Axe()
BLOCKING = ("serious", "critical")


def _describe(violation: dict[str, Any]) -> str:
    targets = [" ".join(map(str, node.get("target", []))) for node in violation["nodes"][:5]]
    return f"{violation['impact']}: {violation['id']} ({violation['help']}) at {targets}"


async def assert_accessible(page: Page, context: str) -> None:
    """Fail, listing each, when axe-core finds a serious or critical violation on the page as
    it is now; `context` (e.g. "dashboard, phone, dark") names the state in the message."""
    results = await _AXE.run(page)
    blocking = [v for v in results.response["violations"] if v.get("impact") in BLOCKING]
    assert not blocking, f"{context}: " + "; ".join(_describe(v) for v in blocking)
