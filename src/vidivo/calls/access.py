"""Who may see a call and who may act on it: its host, its guest, an admin who looks."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from vidivo.auth.service import GuestPrincipal, Principal
from vidivo.calls.models import CallSession
from vidivo.calls.repository import load_session
from vidivo.core.errors import NotFound


def ensure_may_view(session: CallSession, caller: Principal | GuestPrincipal) -> None:
    if isinstance(caller, GuestPrincipal):
        if caller.session_id != session.id:
            raise NotFound("No call session with this id.")
    elif caller.user.id != session.host_id and caller.user.role != "admin":
        raise NotFound("No call session with this id.")


def ensure_party(session: CallSession, caller: Principal | GuestPrincipal) -> None:
    """The call's own host or guest: an admin may look at a call, never join or end it."""
    ensure_may_view(session, caller)
    if isinstance(caller, Principal) and caller.user.id != session.host_id:
        raise NotFound("No call session with this id.")


def ensure_host_of(session: CallSession, principal: Principal) -> None:
    if principal.user.id != session.host_id:
        raise NotFound("No call session with this id.")


async def get_for_party(
    db: AsyncSession, session_id: str, caller: Principal | GuestPrincipal
) -> CallSession:
    session = await load_session(db, session_id)
    ensure_party(session, caller)
    return session


async def get_for(
    db: AsyncSession, session_id: str, caller: Principal | GuestPrincipal
) -> CallSession:
    session = await load_session(db, session_id)
    ensure_may_view(session, caller)
    return session
