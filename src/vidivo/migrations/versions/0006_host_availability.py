"""users.away and host_dashboards: a host's availability as guests see it before paying

`away` is the host's own switch; `host_dashboards` has a row per open dashboard socket, kept
fresh by its heartbeat, so every API instance knows whether the host is at a dashboard.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import vidivo.core.db

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("away", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.create_table(
        "host_dashboards",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("host_id", sa.String(length=26), nullable=False),
        sa.Column("seen_at", vidivo.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["host_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_host_dashboards_host_id", "host_dashboards", ["host_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_host_dashboards_host_id", table_name="host_dashboards")
    op.drop_table("host_dashboards")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("away")
