"""Money is integer cents inside and a 2-decimal string at the API; never a float."""

from __future__ import annotations

import re
from decimal import Decimal

_AMOUNT = re.compile(r"^(0|[1-9][0-9]{0,8})(\.[0-9]{1,2})?$")


def parse_amount_to_cents(text: str) -> int:
    """`"2.5"` → 250. Raises ValueError for anything but a plain non-negative decimal."""
    if not _AMOUNT.fullmatch(text):
        raise ValueError('must be a decimal string with at most 2 decimals, like "2.50"')
    return int(Decimal(text) * 100)


def format_cents(cents: int) -> str:
    """250 → `"2.50"`."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}{whole}.{part:02d}"


def refunded_fee_cents(fee_cents: int, captured_cents: int, refund_cents: int) -> int:
    """The platform's share handed back with a refund: the fee's share of the refunded part,
    rounded down, so the fee handed back never exceeds the fee taken.

    Here, below both, because two parts apply it: the ledger (calls) when it records a
    refund, and the simulated provider when it moves the host's balance as Stripe does with
    `refund_application_fee`."""
    if captured_cents <= 0:
        return 0
    return fee_cents * refund_cents // captured_cents
