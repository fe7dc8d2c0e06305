"""The SQL statements the app sends, for the fast paths' tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event

from vidivo.core.sqlite_lane import sqlite_lane

_TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


@contextmanager
def statements(context) -> Iterator[list[str]]:
    """The SQL statements the app sends while the block runs: through SQLAlchemy, and those a
    fast path sends on the driver's own connection (`DriverStatement`), which on PostgreSQL
    asyncpg's query loggers see (SQLAlchemy's own, prepared, it does not) and on SQLite the
    lane connection's trace callback."""
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        seen.append(statement)

    def record_driver(query) -> None:
        if not query.query.lstrip().upper().startswith(_TRANSACTION_CONTROL):
            seen.append(query.query)

    def checkout(_dbapi, connection_record, _proxy) -> None:
        connection_record.driver_connection.add_query_logger(record_driver)

    def checkin(_dbapi, connection_record) -> None:
        if connection_record.driver_connection is not None:
            connection_record.driver_connection.remove_query_logger(record_driver)

    engine = context.engine.sync_engine
    on_postgresql = engine.dialect.driver == "asyncpg"
    event.listen(engine, "before_cursor_execute", record)
    if on_postgresql:
        event.listen(engine.pool, "checkout", checkout)
        event.listen(engine.pool, "checkin", checkin)
    else:
        for writes in (True, False):
            sqlite_lane(context.engine, writes=writes).connection.set_trace_callback(seen.append)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)
        if on_postgresql:
            event.remove(engine.pool, "checkout", checkout)
            event.remove(engine.pool, "checkin", checkin)
        else:
            for writes in (True, False):
                sqlite_lane(context.engine, writes=writes).connection.set_trace_callback(None)
