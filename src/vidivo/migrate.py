"""Apply the Alembic history to the configured database."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(database_url: str, *, reconnect_grace_seconds: int = 60) -> Config:
    """`reconnect_grace_seconds`: the deployment's setting, which the calls already stored
    ran with (earlier releases read it live instead of freezing it on the call)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # `%` is ConfigParser interpolation syntax; URL-encoded passwords must survive it.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["reconnect_grace_seconds"] = reconnect_grace_seconds
    return config


def upgrade_to_head(database_url: str, *, reconnect_grace_seconds: int = 60) -> None:
    if database_url.startswith("sqlite:///"):
        Path(database_url.removeprefix("sqlite:///")).expanduser().parent.mkdir(
            parents=True, exist_ok=True
        )
    config = alembic_config(database_url, reconnect_grace_seconds=reconnect_grace_seconds)
    command.upgrade(config, "head")
