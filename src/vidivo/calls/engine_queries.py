"""The engine's reads and writes, shaped for its hot path: one round trip each, in Core.

The engine plans on `CallSession` and `BillingWindow` objects, but they are read from Core
rows and written back as Core UPDATEs of the columns that changed: no unit of work, identity
map nor ORM loading on a path taken twice per provider action. The call's UPDATE checks its
version as the ORM's would, and a lost race raises the ORM's `StaleDataError` (the engine
plans again from what is stored then). On PostgreSQL the read and the one-statement save
skip SQLAlchemy's execution machinery too (`DriverPlans`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import (
    BindParameter,
    Insert,
    Select,
    Update,
    bindparam,
    func,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.sql.elements import NamedColumn
from sqlalchemy.sql.selectable import CTE

from vidivo.calls.models import BillingWindow, CallSession, LedgerEntry
from vidivo.core.db import Base, DriverStatement
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
# A plan that gives the worker's lease back checks the lease is still the one it read: a
# claim by another worker (after this one's ran out) leaves the version alone.
_UPDATE_SESSION_RELEASING = _UPDATE_SESSION.where(
    CallSession.lease_owner == bindparam("b_lease_owner")
)
_RELEASE_LEASE = (
    update(CallSession)
    .where(CallSession.id == bindparam("session_id"), CallSession.lease_owner == bindparam("owner"))
    .values(lease_owner=None, lease_until=None)
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
    query (the engine reads them at the start of every plan)."""
    connection = await db.connection()
    return _stored_call((await connection.execute(_READ_CALL, {"session_id": session_id})).all())


def _stored_call(rows: Sequence[Sequence[Any]]) -> StoredCall | None:
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
    """What the plan changed, in the caller's transaction and in the order the ORM would
    flush it: the call (its version checked and moved), then its windows, then the ledger."""
    connection = await db.connection()
    changes = stored.session_changes()
    if changes:
        version = stored.session.version
        checks = {"b_id": stored.session.id, "b_version": version}
        statement = _UPDATE_SESSION
        if "lease_owner" in changes:
            statement = _UPDATE_SESSION_RELEASING
            checks["b_lease_owner"] = stored._session_as_read["lease_owner"]
        changed = await connection.execute(statement, {**checks, **changes, "version": version + 1})
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


class DriverPlans:
    """A plan's read and its save as one statement each, autocommitted on asyncpg's own
    connection (PostgreSQL): no transaction, no BEGIN nor COMMIT, and none of SQLAlchemy's
    execution machinery on a path taken twice per provider action. The save's writes all
    hang on the call's version check, so a lost race writes nothing at all and raises the
    ORM's `StaleDataError`, as `save` does. A plan that ends the call (its receipt, the link's
    use given back) is made in a transaction instead."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._read = DriverStatement(engine, _READ_CALL)
        self._release = DriverStatement(engine, _RELEASE_LEASE)
        # Built and compiled once per plan shape (see `_save_statement`).
        self._save_of_shape = functools.lru_cache(maxsize=256)(self._compiled_save)

    @staticmethod
    def of(engine: AsyncEngine) -> DriverPlans | None:
        """The driver's plans where the engine runs on asyncpg; None elsewhere (SQLite)."""
        return DriverPlans(engine) if engine.dialect.driver == "asyncpg" else None

    async def call_with_windows(self, session_id: str) -> StoredCall | None:
        return _stored_call(await self._read.all({"session_id": session_id}))

    async def save(self, stored: StoredCall) -> None:
        """Every write of the plan in one statement; an unchanged call keeps its version."""
        plan = one_statement_plan(stored)
        if plan is None:
            return
        shape, params = plan
        # A row of the plan there already (another process recorded this very outcome) is
        # the IntegrityError `save` raises too: nothing was written.
        if await self._save_of_shape(shape).scalar(params) != 1:
            raise StaleDataError(f"call {stored.session.id} changed since it was read")
        if shape[0]:
            stored.session.__dict__["version"] += 1

    async def release_lease(self, session_id: str, owner: str) -> None:
        """The worker's lease, given back when it is still `owner`'s (the version stays)."""
        await self._release.all({"session_id": session_id, "owner": owner})

    def _compiled_save(self, shape: _SaveShape) -> DriverStatement:
        return DriverStatement(self._engine, _save_statement(*shape))


# Which columns of the call changed, which windows (new, or the columns that changed), and
# the columns of each new ledger entry: a plan's statement depends on nothing else.
_SaveShape = tuple[
    tuple[str, ...], tuple[tuple[bool, tuple[str, ...]], ...], tuple[tuple[str, ...], ...]
]


def one_statement_plan(stored: StoredCall) -> tuple[_SaveShape, dict[str, Any]] | None:
    """The shape of the plan's one statement and its values; None when it changes nothing."""
    session = stored.session
    changes = stored.session_changes()
    version = session.version
    # Parameter names: `where_…` for the checks, `set_…` for changed columns, `new_…` for
    # new rows; each window's and entry's with its place in the statement.
    params: dict[str, Any] = {
        "where_call_id": session.id,
        "where_call_version": version,
        "set_call_version": version + 1 if changes else version,
        **{f"set_call_{key}": value for key, value in changes.items()},
    }
    if "lease_owner" in changes:  # the lease given back must still be the one read
        params["where_call_lease_owner"] = stored._session_as_read["lease_owner"]
    windows: list[tuple[bool, tuple[str, ...]]] = []
    for window in stored.windows:
        as_read = stored._windows_as_read.get(window.id)
        n = len(windows)
        if as_read is None:
            values = _new_row(BillingWindow, _values(window, _WINDOW_KEYS))
            params |= {f"new_w{n}_{key}": value for key, value in values.items()}
        elif values := _changes(window, as_read):
            params |= {f"set_w{n}_{key}": value for key, value in values.items()}
            params[f"where_w{n}_id"] = window.id
        else:
            continue
        windows.append((as_read is None, tuple(values)))
    ledger: list[tuple[str, ...]] = []
    for n, entry in enumerate(stored.ledger):
        values = _new_row(LedgerEntry, _values(entry, _LEDGER_KEYS))
        ledger.append(tuple(values))
        params |= {f"new_l{n}_{key}": value for key, value in values.items()}
    if not changes and not windows and not ledger:
        return None
    return (tuple(changes), tuple(windows), tuple(ledger)), params


def _save_statement(
    call_keys: tuple[str, ...],
    windows: tuple[tuple[bool, tuple[str, ...]], ...],
    ledger: tuple[tuple[str, ...], ...],
) -> Select[int]:
    """The one statement for a plan of this shape (which columns of the call and of which
    windows changed, how many new rows), built once: its values are parameters."""
    checks = [
        CallSession.id == bindparam("where_call_id"),
        CallSession.version == bindparam("where_call_version"),
    ]
    if "lease_owner" in call_keys:  # see `_UPDATE_SESSION_RELEASING`
        checks.append(CallSession.lease_owner == bindparam("where_call_lease_owner"))
    call_row = (
        update(CallSession)
        .where(*checks)
        .values(
            {
                **{key: _param(CallSession, "set_call_", key) for key in call_keys},
                "version": bindparam("set_call_version"),
            }
        )
        .returning(CallSession.id)
        .cte("call_row")
    )
    writes: list[Insert | Update] = []
    for n, (new, keys) in enumerate(windows):
        if new:
            writes.append(_insert_if_matched(BillingWindow, f"new_w{n}_", keys, call_row))
        else:
            writes.append(
                update(BillingWindow)
                .where(
                    BillingWindow.id == bindparam(f"where_w{n}_id"),
                    BillingWindow.session_id.in_(select(call_row.c.id)),
                )
                .values({key: _param(BillingWindow, f"set_w{n}_", key) for key in keys})
            )
    writes += [
        _insert_if_matched(LedgerEntry, f"new_l{n}_", keys, call_row)
        for n, keys in enumerate(ledger)
    ]
    return (
        select(func.count())
        .select_from(call_row)
        .add_cte(*(write.cte(f"write_{n}") for n, write in enumerate(writes)))
    )


def _param(model: type[Base], prefix: str, key: str) -> BindParameter[Any]:
    return bindparam(prefix + key, type_=model.__table__.c[key].type)


def _insert_if_matched(
    model: type[Base], prefix: str, keys: tuple[str, ...], call_row: CTE
) -> Insert:
    """A new row, inserted only when the call's UPDATE matched (its one row, or none)."""
    row = select(*(_param(model, prefix, key) for key in keys)).select_from(call_row)
    return insert(model).from_select(list(keys), row, include_defaults=False)


def _new_row(model: type[Base], values: dict[str, Any]) -> dict[str, Any]:
    """A new row's values, its columns' scalar defaults filled in. A column with no value and
    no scalar default (an id left to a callable default) is a programming error, raised as
    one: the statement would otherwise fail as if it had lost a race, and be retried."""
    defaults, required = _new_row_rules(model)
    row = defaults | values
    missing = [key for key in required if key not in row]
    if missing:
        raise ValueError(f"new {model.__tablename__} row without {', '.join(missing)}")
    return row


@functools.cache
def _new_row_rules(model: type[Base]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """A table's scalar column defaults and its non-nullable columns, read once."""
    columns = model.__table__.columns
    defaults = {
        column.key: column.default.arg
        for column in columns
        if column.default is not None and column.default.is_scalar
    }
    return defaults, tuple(column.key for column in columns if not column.nullable)


def _values(row: Base, keys: list[str]) -> dict[str, Any]:
    """The columns a new object was given (the others take their column defaults)."""
    given = row.__dict__
    return {key: given[key] for key in keys if key in given}


def lease_release_folded(stored: StoredCall, owner: str) -> bool:
    """The worker's lease ends with the plan that leaves the call: folded into the call's own
    UPDATE when the plan changes the call anyway (its version moves then regardless);
    otherwise not (False), and the caller gives it back after the save with an UPDATE that
    leaves the version alone, as a claim does. A folded release saves only while the lease
    is still the one read (`save` checks it), so a lease another worker took meanwhile
    stays."""
    session = stored.session
    if not stored.session_changes():
        return False
    if session.lease_owner == owner:
        session.lease_owner = None
        session.lease_until = None
    return True
