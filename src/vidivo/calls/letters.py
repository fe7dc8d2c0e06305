"""The call emails, written once as `Letter`s (text and HTML): the offline host's "a guest is
waiting", the guest's receipt and the guest's refund notice. Links are on the public base URL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from vidivo.core.money import format_cents
from vidivo.core.schemas import format_timestamp
from vidivo.mail.letters import Action, Letter


def guest_waiting(
    *,
    base_url: str,
    guest_name: str,
    host_name: str,
    join_by: datetime,
    join_minutes: int,
) -> Letter:
    """To a host with no dashboard open: the link opens the dashboard on its incoming calls."""
    return Letter(
        subject=f"{guest_name} is waiting for your Vidivo call",
        paragraphs=(
            f"Hello {host_name},",
            f"{guest_name} has started a paid video call with you and is waiting. "
            f"You have {join_minutes} minutes to join (until {format_timestamp(join_by)} UTC).",
        ),
        action=Action("Open the call", f"{base_url}/app#incoming"),
        closing=(
            "If you do not join in time, the hold on the guest's card is released and nothing "
            "is charged.",
        ),
    )


@dataclass(frozen=True)
class ReceiptLine:
    number: int
    minutes: int
    captured_cents: int


BRANDS = {
    "amex": "American Express",
    "diners": "Diners Club",
    "discover": "Discover",
    "jcb": "JCB",
    "mastercard": "Mastercard",
    "unionpay": "UnionPay",
    "visa": "Visa",
}


def card_words(brand: str | None, last4: str | None) -> str:
    """ "Visa ending in 4242"; "your card" when the provider did not say."""
    if not last4:
        return "your card"
    name = BRANDS.get((brand or "").lower(), (brand or "Card").title())
    return f"{name} ending in {last4}"


def receipt(
    *,
    host_name: str,
    guest_name: str,
    rate_cents: int,
    window_minutes: int,
    lines: list[ReceiptLine],
    ended_at: datetime,
    card: str = "your card",
    receipt_url: str | None = None,
) -> Letter:
    """To the guest of a call that went live and was charged: what was taken, window by window,
    and the signed address where the receipt can be opened again, with no account."""
    total = sum(line.captured_cents for line in lines)
    rows = tuple(
        f"Window {line.number}: {line.minutes} min, ${format_cents(line.captured_cents)} charged"
        for line in lines
    )
    return Letter(
        subject=f"Your receipt for the call with {host_name}",
        paragraphs=(
            f"Hello {guest_name},",
            f"Your video call with {host_name} ended on {format_timestamp(ended_at)} (UTC).",
            f"Terms: ${format_cents(rate_cents)} per minute, held in windows of "
            f"{window_minutes} minutes; only the minutes used are charged, the rest of each "
            "hold is released.",
            *rows,
            f"Total charged: ${format_cents(total)}, to {card}.",
        ),
        action=Action("Open your receipt", receipt_url) if receipt_url else None,
        closing=("Keep this email: the receipt link works in any browser, with no account.",)
        if receipt_url
        else (),
    )


def refund(
    *, host_name: str, guest_name: str, amount_cents: int, session_id: str, call_date: datetime
) -> Letter:
    """To the guest: money from a call went back to the card."""
    return Letter(
        subject=f"A refund of ${format_cents(amount_cents)} for your call with {host_name}",
        paragraphs=(
            f"Hello {guest_name},",
            f"${format_cents(amount_cents)} of what you paid for your video call with "
            f"{host_name} on {format_timestamp(call_date)} (UTC) has been refunded to your card "
            f"(call {session_id}). Your bank may take a few days to show it.",
        ),
    )
