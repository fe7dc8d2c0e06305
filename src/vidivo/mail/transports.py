"""Where outbox mail goes: the log on the embedded default, SMTP when configured."""

from __future__ import annotations

import logging
from email.message import EmailMessage
from typing import Protocol

import aiosmtplib

from vidivo.core.config import Settings

log = logging.getLogger("vidivo.mail")


class MailTransport(Protocol):
    async def send(self, message: EmailMessage) -> None: ...


class LogTransport:
    async def send(self, message: EmailMessage) -> None:
        log.info(
            "email to %s: %s\n%s",
            message["To"],
            message["Subject"],
            _text_of(message),
        )


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
    return SmtpTransport(settings) if settings.smtp_host else LogTransport()
