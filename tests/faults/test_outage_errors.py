"""Which errors mean "the database is not there right now" (503 and a quiet retry) rather
than a bug (500 and a traceback): the classification the fault tests rely on, including the
moment PostgreSQL is shutting down, which a restart test hits only by chance."""

from __future__ import annotations

import asyncpg.exceptions
from sqlalchemy.exc import DBAPIError, IntegrityError

from vidivo.core.errors import ServiceUnavailable, is_database_outage, unexpected_error


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
