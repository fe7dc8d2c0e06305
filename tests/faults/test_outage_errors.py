"""Which errors mean "the database is not there right now" (503 and a quiet retry) rather
than a bug (500 and a traceback): the classification the fault tests rely on, including the
moment PostgreSQL is shutting down, which a restart test hits only by chance; and a lost race
on a versioned row (409, try again), which is neither."""

from __future__ import annotations

import json

import asyncpg.exceptions
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from vidivo.core.errors import (
    ServiceUnavailable,
    error_response,
    is_database_outage,
    unexpected_error,
)


def _as_sqlalchemy_raises(root: Exception) -> DBAPIError:
    """The chain SQLAlchemy's asyncpg dialect builds: its adapter error caused by asyncpg's,
    wrapped in a DBAPIError whose `orig` is the adapter error."""
    try:
        try:
            raise root
        except Exception as error:
            raise RuntimeError(str(error)) from error
    except RuntimeError as adapted:
        return DBAPIError("SELECT 1", None, adapted)


def test_connecting_while_postgres_shuts_down_is_an_outage():
    error = _as_sqlalchemy_raises(
        asyncpg.exceptions.CannotConnectNowError("the database system is shutting down")
    )
    assert is_database_outage(error)
    assert isinstance(unexpected_error(error), ServiceUnavailable)


def test_an_administrator_shutdown_mid_query_is_an_outage():
    error = _as_sqlalchemy_raises(
        asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator")
    )
    assert is_database_outage(error)


def test_a_constraint_violation_is_not_an_outage():
    violation = asyncpg.exceptions.UniqueViolationError("duplicate key value")
    assert not is_database_outage(_as_sqlalchemy_raises(violation))
    assert not is_database_outage(IntegrityError("INSERT", None, violation))
    assert not is_database_outage(ValueError("a bug"))


def test_a_lost_race_on_a_versioned_row_is_a_conflict_to_retry_not_a_server_error():
    """Two requests changed one call at once and the other wrote first: the client is told
    to try again (409 in the API's error shape), not that the server failed."""
    error = StaleDataError("UPDATE statement on table 'call_sessions' expected to update 1 row")
    response = error_response(unexpected_error(error))
    assert response.status_code == 409
    body = json.loads(bytes(response.body))
    assert body["error"]["code"] == "conflict"
    assert "try again" in body["error"]["message"]
