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
