"""Where outbox mail goes: SMTP when configured; otherwise, in development, a folder of
`.eml` files, and in production nowhere (it waits in the outbox).

Mail bodies carry sign-in secrets (verification links), so no transport ever logs a body:
the log names the recipient, the subject and, in development, the file to open."""

from __future__ import annotations

import asyncio
import email.policy
import logging
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

import aiosmtplib
from ulid import ULID

from vidivo.core.config import Environment, Settings

log = logging.getLogger("vidivo.mail")


class MailTransport(Protocol):
    async def send(self, message: EmailMessage) -> None: ...


class MailboxFolder:
    """Development without SMTP: each mail is a file the developer opens."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder

    async def send(self, message: EmailMessage) -> None:
        path = self._folder / f"{ULID()}.eml"  # ULIDs sort by time: the newest mail is last
        await asyncio.to_thread(self._write, path, _readable(message))
        log.info("email to %s: %s (written to %s)", message["To"], message["Subject"], path)

    def _write(self, path: Path, content: bytes) -> None:
        self._folder.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def _readable(message: EmailMessage) -> bytes:
    """The message with its body as plain 8-bit text: a link stays whole in any editor
    (SMTP's quoted-printable would break long lines)."""
    readable = EmailMessage(policy=email.policy.default.clone(max_line_length=None))
    for name in ("From", "To", "Subject"):
        readable[name] = message[name]
    readable.set_content(_text_of(message), cte="8bit")
    return readable.as_bytes()


class NoMailServer(Exception):
    pass


class Undeliverable:
    """Production without SMTP: the mail stays in the outbox (its delivery is retried and
    the failure logged), never written to a log or a file."""

    async def send(self, message: EmailMessage) -> None:
        raise NoMailServer("no mail server: set VIDIVO_SMTP_HOST to send mail")


def _text_of(message: EmailMessage) -> str:
    """The plain-text part, whether or not an HTML alternative rides along."""
    part = message.get_body(preferencelist=("plain",))
    return "" if part is None else str(part.get_content())


class SmtpTransport:
    def __init__(self, settings: Settings) -> None:
        assert settings.smtp_host is not None
        self._settings = settings

    async def send(self, message: EmailMessage) -> None:
        s = self._settings
        await aiosmtplib.send(
            message,
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username,
            password=s.smtp_password,
            start_tls=s.smtp_starttls,
            timeout=15,
        )


def transport_for(settings: Settings) -> MailTransport:
    if settings.smtp_host:
        return SmtpTransport(settings)
    if settings.environment == Environment.PRODUCTION:
        return Undeliverable()
    return MailboxFolder(settings.data_dir / "mail")
