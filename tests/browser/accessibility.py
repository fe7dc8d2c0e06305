"""axe-core in the browser tests: a page passes when axe finds no serious or critical
violation. axe-core comes bundled in the `axe-playwright-python` package (a dev dependency),
never as a file copied into this repository.

With VIDIVO_REVIEW_SCREENSHOTS=<folder>, every checked state is also saved there as a PNG
named after its context, for looking at each page and state at both sizes and in both
colour schemes."""

from __future__ import annotations

import os
import re
from pathlib import Path
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
    review = os.environ.get("VIDIVO_REVIEW_SCREENSHOTS")
    if review:
        name = re.sub(r"[^a-z0-9]+", "-", context.lower()).strip("-")
        await page.screenshot(path=Path(review) / f"{name}.png")
    results = await _AXE.run(page)
    blocking = [v for v in results.response["violations"] if v.get("impact") in BLOCKING]
    assert not blocking, f"{context}: " + "; ".join(_describe(v) for v in blocking)


async def assert_accessible_in_both_schemes(page: Page, context: str) -> None:
    """assert_accessible in the light and the dark palette, leaving the page light."""
    for scheme in ("light", "dark"):
        await page.emulate_media(color_scheme=scheme)
        await assert_accessible(page, f"{context}, {scheme}")
    await page.emulate_media(color_scheme="light")
