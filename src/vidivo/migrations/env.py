"""Alembic environment: one migration history for SQLite and PostgreSQL, run on the async engine."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from vidivo.core.db import Base, create_engine
from vidivo.models import load_all_models

load_all_models()
config = context.config
target_metadata = Base.metadata
MIGRATION_LOCK = 0x76696469766F  # 'vidivo'


def _configure_and_run(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # SQLite alters a table by copying it and dropping the original, and with foreign keys
        # enforced that drop fails as soon as another table's rows point at it (every call
        # has windows). The pragma only takes effect outside a transaction: set it first,
        # and check every reference once the migrations are done instead.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=sqlite,  # SQLite alters by table copy
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Instances starting together on one database migrate one after the other; the
            # lock ends with the transaction, and the next one finds nothing left to do.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        context.run_migrations()
        if sqlite:
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
            if broken:
                raise RuntimeError(f"migrations left rows with dangling references: {broken}")


async def _run_online() -> None:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    async with engine.connect() as connection:
        await connection.run_sync(_configure_and_run)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online())
