"""What happens to a call, as typed events: told to both parties' sockets over the hub."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from vidivo.core.hub import Event
from vidivo.core.money import format_cents
from vidivo.core.schemas import format_timestamp


@dataclass(frozen=True)
class CallEvent:
    """A message on the call's channel; `message()` is what the sockets carry."""

    def message(self) -> Event:
        raise NotImplementedError


@dataclass(frozen=True)
class WindowRenewed(CallEvent):
    window: int
    held_cents: int

    def message(self) -> Event:
        return {
            "type": "window_renewed",
            "window": self.window,
            "held": format_cents(self.held_cents),
        }


@dataclass(frozen=True)
class HoldDeclined(CallEvent):
    window: int
    decline_code: str
    amount_cents: int
    # The call ends then unless the guest gives a card that holds.
    deadline: datetime | None

    def message(self) -> Event:
        return {
            "type": "hold_declined",
            "window": self.window,
            "decline_code": self.decline_code,
            "amount": format_cents(self.amount_cents),
            "deadline": format_timestamp(self.deadline) if self.deadline else None,
        }


@dataclass(frozen=True)
class CardUpdated(CallEvent):
    def message(self) -> Event:
        return {"type": "card_updated"}


@dataclass(frozen=True)
class Ending(CallEvent):
    reason: str | None

    def message(self) -> Event:
        return {"type": "ending", "reason": self.reason}


@dataclass(frozen=True)
class Ended(CallEvent):
    state: str
    reason: str | None
    total_cents: int

    def message(self) -> Event:
        return {
            "type": "ended",
            "state": self.state,
            "reason": self.reason,
            "total": format_cents(self.total_cents),
        }


@dataclass(frozen=True)
class LinkUseReturned(CallEvent):
    """Not for the call's sockets: a use went back to the link, whose cached view changes."""

    code: str | None

    def message(self) -> Event:
        return {"type": "link_use_returned", "code": self.code}


@dataclass(frozen=True)
class WentLive(CallEvent):
    def message(self) -> Event:
        return {"type": "went_live"}


@dataclass(frozen=True)
class Paused(CallEvent):
    def message(self) -> Event:
        return {"type": "paused"}


@dataclass(frozen=True)
class Resumed(CallEvent):
    def message(self) -> Event:
        return {"type": "resumed"}


@dataclass(frozen=True)
class PeerJoined(CallEvent):
    # Sockets skip events `from` their own role: a party never hears itself arrive.
    role: str
    state: str

    def message(self) -> Event:
        return {"type": "peer_joined", "from": self.role, "state": self.state}


@dataclass(frozen=True)
class PeerLeft(CallEvent):
    role: str

    def message(self) -> Event:
        return {"type": "peer_left", "from": self.role}


@dataclass(frozen=True)
class IncomingCall(CallEvent):
    """On the host's own channel (`host:{id}`): a guest has paid and waits."""

    session_id: str

    def message(self) -> Event:
        return {"type": "incoming_call", "session_id": self.session_id}


@dataclass(frozen=True)
class IncomingCallGone(CallEvent):
    """On the host's own channel: a call that rang ends before it went live (the guest
    cancelled, the host declined or never came), so the dashboard drops its card."""

    host_id: str
    session_id: str

    def message(self) -> Event:
        return {"type": "incoming_call_gone", "session_id": self.session_id}
