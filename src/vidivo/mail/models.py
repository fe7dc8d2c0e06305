from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vidivo.core.db import Base, UTCDateTime, new_id


class OutboxEmail(Base):
    """An email written in the same transaction as the change that caused it."""

    __tablename__ = "email_outbox"

    id: Mapped[str] = mapped_column(String(26), primary_key=True, default=new_id)
    recipient: Mapped[str] = mapped_column(String(320), index=True)
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    # The same message as HTML, sent as an alternative part beside the text (None: text only).
    html_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
