"""The engine's reads and writes, shaped for its hot path: one round trip each, in Core.

The engine plans on `CallSession` and `BillingWindow` objects, but they are read from Core
rows and written back as Core UPDATEs of the columns that changed: no unit of work, identity
map nor ORM loading on a path taken twice per provider action. The call's UPDATE checks its
version as the ORM's would, and a lost race raises the ORM's `StaleDataError` (the engine
plans again from what is stored then).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import bindparam, insert, inspect, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.sql.elements import NamedColumn

from vidivo.calls import repository
from vidivo.calls.models import BillingWindow, CallSession, LedgerEntry
from vidivo.core.db import Base
from vidivo.payouts import service as payouts

M = TypeVar("M", bound=Base)


def _columns(model: type[Base]) -> list[tuple[str, NamedColumn[Any]]]:
    return [(prop.key, prop.columns[0]) for prop in inspect(model).column_attrs]


_SESSION_COLUMNS = _columns(CallSession)
_WINDOW_COLUMNS = _columns(BillingWindow)
_SESSION_KEYS = [key for key, _ in _SESSION_COLUMNS]
_WINDOW_KEYS = [key for key, _ in _WINDOW_COLUMNS]
_LEDGER_KEYS = [key for key, _ in _columns(LedgerEntry)]
_WINDOW_START = len(_SESSION_COLUMNS)
_WINDOW_END = _WINDOW_START + len(_WINDOW_COLUMNS)

# Built once: SQLAlchemy then neither rebuilds nor re-keys them on every execution.
_READ_CALL = (
    select(
        *(column for _, column in _SESSION_COLUMNS),
        *(column for _, column in _WINDOW_COLUMNS),
        payouts.charges_enabled_column(CallSession.host_id),
    )
    .outerjoin(BillingWindow, BillingWindow.session_id == CallSession.id)
    .where(CallSession.id == bindparam("session_id"))
    .order_by(BillingWindow.number)
)
# The SET clause is the changed columns passed with the parameters.
_UPDATE_SESSION = update(CallSession).where(
    CallSession.id == bindparam("b_id"), CallSession.version == bindparam("b_version")
)
_UPDATE_WINDOW = update(BillingWindow).where(BillingWindow.id == bindparam("b_id"))
_INSERT_WINDOW = insert(BillingWindow)
_INSERT_LEDGER = insert(LedgerEntry)


@dataclass
class StoredCall:
    session: CallSession
    windows: list[BillingWindow]  # in order; a window planned now is appended
    payee_ready: bool  # the host's payout account takes charges now (a new hold needs it)
    ledger: list[LedgerEntry] = field(default_factory=list)  # entries to write with the plan
    _session_as_read: dict[str, Any] = field(default_factory=dict)
    _windows_as_read: dict[str, dict[str, Any]] = field(default_factory=dict)

    def session_changes(self) -> dict[str, Any]:
        return _changes(self.session, self._session_as_read)


def _changes(row: Base, as_read: dict[str, Any]) -> dict[str, Any]:
    now = row.__dict__
    return {key: now[key] for key, value in as_read.items() if now.get(key) != value}


def _from_row(model: type[M], keys: list[str], values: Sequence[Any]) -> M:
    """A model object holding a row's values, outside any ORM session."""
    row: M = model.__mapper__.class_manager.new_instance()
    row.__dict__.update(zip(keys, values, strict=True))
    return row


async def call_with_windows(db: AsyncSession, session_id: str) -> StoredCall | None:
    """The call as stored now, its windows and whether its host can take charges, in one
    query (the engine reads them at the start of every transaction)."""
    connection = await db.connection()
    rows = (await connection.execute(_READ_CALL, {"session_id": session_id})).all()
    if not rows:
        return None
    first = rows[0]
    stored = StoredCall(
        _from_row(CallSession, _SESSION_KEYS, first[:_WINDOW_START]),
        [],
        bool(first[_WINDOW_END]),
        _session_as_read=dict(zip(_SESSION_KEYS, first[:_WINDOW_START], strict=True)),
    )
    for row in rows:
        values = row[_WINDOW_START:_WINDOW_END]
        if values[0] is None:  # the outer join found no window
            continue
        window = _from_row(BillingWindow, _WINDOW_KEYS, values)
        stored.windows.append(window)
        stored._windows_as_read[window.id] = dict(zip(_WINDOW_KEYS, values, strict=True))
    return stored


async def save(db: AsyncSession, stored: StoredCall) -> None:
    """What the plan changed, in the order the ORM would flush it: the call (its version
    checked and moved), then its windows, then the ledger."""
    connection = await db.connection()
    changes = stored.session_changes()
    if changes:
        version = stored.session.version
        changed = await connection.execute(
            _UPDATE_SESSION,
            {"b_id": stored.session.id, "b_version": version, **changes, "version": version + 1},
        )
        if changed.rowcount != 1:
            raise StaleDataError(f"call {stored.session.id} changed since it was read")
        stored.session.__dict__["version"] = version + 1
    for window in stored.windows:
        as_read = stored._windows_as_read.get(window.id)
        if as_read is None:
            await connection.execute(_INSERT_WINDOW, _values(window, _WINDOW_KEYS))
        elif window_changes := _changes(window, as_read):
            await connection.execute(_UPDATE_WINDOW, {"b_id": window.id, **window_changes})
    if stored.ledger:
        await connection.execute(
            _INSERT_LEDGER, [_values(entry, _LEDGER_KEYS) for entry in stored.ledger]
        )


def _values(row: Base, keys: list[str]) -> dict[str, Any]:
    """The columns a new object was given (the others take their column defaults)."""
    given = row.__dict__
    return {key: given[key] for key in keys if key in given}


async def give_back_lease(db: AsyncSession, stored: StoredCall, owner: str) -> None:
    """The worker's lease ended in the transaction that leaves the call: folded into the
    call's own UPDATE when this transaction changes the call anyway (its version moves
    then regardless), else one UPDATE that leaves the version alone, as a claim does."""
    session = stored.session
    if stored.session_changes():
        if session.lease_owner == owner:
            session.lease_owner = None
            session.lease_until = None
    else:
        await repository.release_lease(db, session.id, owner)
