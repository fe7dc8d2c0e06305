"""The call emails, written once as `Letter`s (text and HTML): the offline host's "a guest is
waiting", the guest's receipt and the guest's refund notice. Links are on the public base URL."""

from __future__ import annotations

from datetime import datetime

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
