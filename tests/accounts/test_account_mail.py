"""Account emails reach a real SMTP server as text and HTML, and their links work."""

from __future__ import annotations

import asyncio
import email
import socket
from email.message import EmailMessage
from email.policy import default
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from tests.accounts.conftest import BASE, link_in, token_of
from tests.conftest import PASSWORD


class Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 OK"

    async def next_to(self, address: str, subject: str) -> EmailMessage:
        for _ in range(200):
            for message in self.messages:
                if message["To"] == address and message["Subject"] == subject:
                    self.messages.remove(message)
                    return message
            await asyncio.sleep(0.05)
        raise AssertionError(f"no {subject!r} email to {address}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def inbox() -> Any:
    handler = Inbox()
    port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    handler.port = port  # type: ignore[attr-defined]
    yield handler
    controller.stop()


@pytest.fixture
def settings(settings, inbox):
    """The app's outbox delivers to the test's SMTP server."""
    return settings.model_copy(
        update={"smtp_host": "127.0.0.1", "smtp_port": inbox.port, "smtp_starttls": False}
    )


def parts_of(message: EmailMessage) -> tuple[str, str]:
    """The text and the HTML alternative of a multipart/alternative email."""
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


async def signed_up_host(http: httpx.AsyncClient, inbox: Inbox, address: str) -> str:
    response = await http.post(
        "/v1/auth/signup", json={"email": address, "password": PASSWORD, "display_name": "Ana"}
    )
    assert response.status_code == 201, response.text
    verification = await inbox.next_to(address, "Verify your Vidivo email")
    token = verification.get_content().split("Verification token: ")[1].split()[0]
    assert (await http.post("/v1/auth/verify-email", json={"token": token})).status_code == 200
    login = await http.post("/v1/auth/token", json={"email": address, "password": PASSWORD})
    return str(login.json()["access_token"])


async def test_the_reset_email_has_text_and_html_and_its_link_resets(client, inbox):
    await signed_up_host(client, inbox, "ana@example.com")
    asked = await client.post("/v1/auth/password-reset", json={"email": "ana@example.com"})
    assert asked.status_code == 202
    text, html = parts_of(await inbox.next_to("ana@example.com", "Reset your Vidivo password"))
    link = link_in(text, "/reset-password")
    assert f'href="{link}"' in html
    assert "works once, for 60 minutes" in text and "works once, for 60 minutes" in html
    page = await client.get(link.removeprefix(BASE))
    assert page.status_code == 200
    assert 'src="/static/js/account_links.js"' in page.text
    assert "<script>" not in page.text  # the CSP allows no inline script
    confirmed = await client.post(
        "/v1/auth/password-reset/confirm",
        json={"token": token_of(link), "new_password": "a brand new passphrase"},
    )
    assert confirmed.status_code == 204
    notice = await inbox.next_to("ana@example.com", "Your Vidivo password was changed")
    assert "password" in parts_of(notice)[1]
    login = await client.post(
        "/v1/auth/token",
        json={"email": "ana@example.com", "password": "a brand new passphrase"},
    )
    assert login.status_code == 200


async def test_the_email_change_link_goes_to_the_new_inbox_and_the_old_one_is_told(client, inbox):
    access = await signed_up_host(client, inbox, "ana@example.com")
    asked = await client.patch(
        "/v1/me", headers={"Authorization": f"Bearer {access}"}, json={"email": "ana@new.example"}
    )
    assert asked.status_code == 200, asked.text
    text, html = parts_of(await inbox.next_to("ana@new.example", "Confirm your new Vidivo email"))
    link = link_in(text, "/confirm-email")
    assert f'href="{link}"' in html
    notice_text, notice_html = parts_of(
        await inbox.next_to("ana@example.com", "Your Vidivo email is about to change")
    )
    assert "ana@new.example" in notice_text and "ana@new.example" in notice_html
    assert "token=" not in notice_text
    page = await client.get(link.removeprefix(BASE))
    assert page.status_code == 200 and f'value="{token_of(link)}"' in page.text
    confirmed = await client.post("/v1/auth/verify-email", json={"token": token_of(link)})
    assert confirmed.json()["user"]["email"] == "ana@new.example"
