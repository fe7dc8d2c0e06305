"""accounts: a host's bio, a pending change of email, password resets, deleted accounts,
HTML email bodies

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26

Only additions: every new column is nullable, so existing rows need no backfill (no bio, no
pending address, not deleted, text-only mail).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import vidivo.core.db

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("bio", sa.String(length=280), nullable=True))
        batch_op.add_column(sa.Column("pending_email", sa.String(length=320), nullable=True))
        batch_op.add_column(
            sa.Column("deleted_at", vidivo.core.db.UTCDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("email_verifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("new_email", sa.String(length=320), nullable=True))
    with op.batch_alter_table("email_outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("html_body", sa.Text(), nullable=True))
    op.create_table(
        "password_resets",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("user_id", sa.String(length=26), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", vidivo.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", vidivo.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", vidivo.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_password_resets_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_resets")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_password_resets_token_hash")),
    )
    with op.batch_alter_table("password_resets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_password_resets_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("password_resets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_password_resets_user_id"))
    op.drop_table("password_resets")
    with op.batch_alter_table("email_outbox", schema=None) as batch_op:
        batch_op.drop_column("html_body")
    with op.batch_alter_table("email_verifications", schema=None) as batch_op:
        batch_op.drop_column("new_email")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("deleted_at")
        batch_op.drop_column("pending_email")
        batch_op.drop_column("bio")
