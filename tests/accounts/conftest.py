"""Account tests drive the app like the session tests (a test clock, calls over HTTP), and
read the emails the outbox holds."""

from __future__ import annotations

import re
from typing import Any

from tests.sessions.conftest import calls, settings
from vidivo.mail.models import OutboxEmail
from vidivo.mail.service import latest_email_to

__all__ = ["calls", "settings"]
BASE = "https://vidivo.test"  # the test settings' public base URL


async def last_mail(context: Any, address: str) -> OutboxEmail:
    async with context.session_factory() as db:
        mail = await latest_email_to(db, address)
    assert mail is not None, f"no email was sent to {address}"
    return mail


def link_in(text: str, path: str) -> str:
    """The absolute link to `path` an email carries."""
    match = re.search(re.escape(f"{BASE}{path}") + r"\?token=[A-Za-z0-9_\-]+", text)
    assert match, f"no {path} link in:\n{text}"
    return match.group(0)


def token_of(link: str) -> str:
    return link.split("?token=", 1)[1]
