"""Queue mail inside a transaction; deliver it after the transaction commits."""

from __future__ import annotations

import asyncio
import logging
from email.message import EmailMessage

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vidivo.core.clock import Clock
from vidivo.mail.models import OutboxEmail
from vidivo.mail.transports import MailTransport

log = logging.getLogger("vidivo.mail")
MAX_ATTEMPTS = 5


def queue_email(
    db: AsyncSession,
    clock: Clock,
    *,
    recipient: str,
    subject: str,
    body: str,
    html: str | None = None,
) -> OutboxEmail:
    email = OutboxEmail(
        recipient=recipient, subject=subject, body=body, html_body=html, created_at=clock.now()
    )
    db.add(email)
    return email


class Mailer:
    """Delivers the outbox; one delivery at a time per process so nothing is sent twice."""

    def __init__(
        self,
        factory: async_sessionmaker[AsyncSession],
        transport: MailTransport,
        clock: Clock,
        *,
        sender: str,
    ) -> None:
        self._factory = factory
        self._transport = transport
        self._clock = clock
        self._sender = sender
        self._lock = asyncio.Lock()

    async def deliver_pending(self) -> int:
        """Send every unsent email; a failure is recorded and retried on the next call."""
        async with self._lock:
            return await self._deliver_batch()

    async def _deliver_batch(self) -> int:
        sent = 0
        async with self._factory() as db:
            pending = await db.scalars(
                select(OutboxEmail)
                .where(OutboxEmail.sent_at.is_(None), OutboxEmail.attempts < MAX_ATTEMPTS)
                .order_by(OutboxEmail.id)
                .limit(100)
            )
            for email in pending:
                email.attempts += 1
                try:
                    await self._transport.send(self._message(email))
                except Exception as exc:  # any transport failure is retried later
                    email.last_error = str(exc)[:500]
                    log.warning("email %s to %s failed: %s", email.id, email.recipient, exc)
                else:
                    email.sent_at = self._clock.now()
                    sent += 1
            await db.commit()
        return sent

    def _message(self, email: OutboxEmail) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = email.recipient
        message["Subject"] = email.subject
        message.set_content(email.body)
        if email.html_body is not None:
            message.add_alternative(email.html_body, subtype="html")
        return message


async def latest_email_to(db: AsyncSession, recipient: str) -> OutboxEmail | None:
    return await db.scalar(
        select(OutboxEmail)
        .where(OutboxEmail.recipient == recipient.lower())
        .order_by(OutboxEmail.id.desc())
        .limit(1)
    )


async def forget_recipient(db: AsyncSession, recipient: str) -> None:
    """Erase the mail kept for an address (its owner's account is deleted)."""
    await db.execute(delete(OutboxEmail).where(OutboxEmail.recipient == recipient))
