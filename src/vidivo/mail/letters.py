"""An email written once and sent as both text and HTML: paragraphs and one action link,
escaped for HTML in one place so no account data (a name, a bio) can inject markup."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from sqlalchemy.ext.asyncio import AsyncSession

from vidivo.core.clock import Clock
from vidivo.mail.models import OutboxEmail
from vidivo.mail.service import queue_email


@dataclass(frozen=True)
class Action:
    label: str
    url: str


@dataclass(frozen=True)
class Letter:
    subject: str
    paragraphs: tuple[str, ...]
    action: Action | None = None
    # Said after the action, e.g. how long the link works.
    closing: tuple[str, ...] = ()

    def text(self) -> str:
        parts = list(self.paragraphs)
        if self.action is not None:
            parts.append(f"{self.action.label}: {self.action.url}")
        parts.extend(self.closing)
        return "\n\n".join(parts) + "\n"

    def html(self) -> str:
        blocks = [f"<p>{escape(p)}</p>" for p in self.paragraphs]
        if self.action is not None:
            url = escape(self.action.url, quote=True)
            blocks.append(f'<p><a href="{url}">{escape(self.action.label)}</a></p>')
            blocks.append(
                f"<p>Or paste this address into your browser: {escape(self.action.url)}</p>"
            )
        blocks.extend(f"<p>{escape(p)}</p>" for p in self.closing)
        body = "\n".join(blocks)
        return (
            '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{escape(self.subject)}</title></head>\n<body>\n{body}\n</body></html>\n"
        )


def queue_letter(db: AsyncSession, clock: Clock, recipient: str, letter: Letter) -> OutboxEmail:
    return queue_email(
        db,
        clock,
        recipient=recipient,
        subject=letter.subject,
        body=letter.text(),
        html=letter.html(),
    )
