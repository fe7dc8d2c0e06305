"""Outbox mail reaches a real SMTP server when one is configured."""

from __future__ import annotations

import asyncio
import socket

import httpx
from aiosmtpd.controller import Controller

from tests.conftest import PASSWORD
from vidivo.app import create_app
from vidivo.core.db import dispose


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], str]] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, envelope.rcpt_tos, envelope.content.decode()))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_signup_mail_is_delivered_over_smtp(settings, clock):
    inbox = _Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        smtp_settings = settings.model_copy(
            update={"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_starttls": False}
        )
        app = create_app(smtp_settings, clock=clock)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            response = await http.post(
                "/v1/auth/signup",
                json={"email": "mail@example.com", "password": PASSWORD, "display_name": "M"},
            )
            assert response.status_code == 201
            for _ in range(100):
                if inbox.messages:
                    break
                await asyncio.sleep(0.05)
        await dispose(app.state.context.engine)
    finally:
        controller.stop()
    assert len(inbox.messages) == 1
    sender, recipients, content = inbox.messages[0]
    assert sender == "no-reply@vidivo.local"
    assert recipients == ["mail@example.com"]
    assert "Verification token: " in content
    assert "Subject: Verify your Vidivo email" in content
