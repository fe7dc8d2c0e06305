"""calls core: frozen terms, the guest-side meter, refund reservations, typed provider actions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

Every existing call is carried forward with the terms it started under: its rate, window,
fee and cap were already stored on it; the currency was USD in every earlier release, and
the reconnect grace was the deployment's setting (default 60 s), which earlier releases read
live: the one the migration is run with. A refund already taken or under way is reserved on
its call, and an in-flight `hold_card_N` action keeps its idempotency key.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

import vidivo.core.db

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("call_sessions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("reconnect_grace_seconds", sa.Integer(), nullable=False, server_default="60")
        )
        batch_op.add_column(
            sa.Column("currency", sa.String(length=3), nullable=False, server_default="usd")
        )
        batch_op.add_column(
            sa.Column("unconfirmed_ms", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("guest_away_since", vidivo.core.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("refund_reserved_cents", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("billing_windows", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("pending_attempt", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("session_refunds", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("retry_at", vidivo.core.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("last_error", sa.String(length=500), nullable=True))

    grace = int(context.config.attributes.get("reconnect_grace_seconds", 60))
    op.execute(
        sa.text("UPDATE call_sessions SET reconnect_grace_seconds = :grace").bindparams(grace=grace)
    )
    # A refund taken or under way holds its amount against the call.
    op.execute(
        "UPDATE call_sessions SET refund_reserved_cents = ("
        " SELECT COALESCE(SUM(amount_cents), 0) FROM session_refunds"
        " WHERE session_refunds.session_id = call_sessions.id)"
    )
    # `hold_card_N` becomes the action `hold_card` with attempt N: the same idempotency key.
    connection = op.get_bind()
    rows = connection.execute(
        sa.text(
            "SELECT id, pending_action FROM billing_windows WHERE pending_action LIKE 'hold_card_%'"
        )
    ).all()
    for window_id, action in rows:
        connection.execute(
            sa.text(
                "UPDATE billing_windows SET pending_action = 'hold_card', pending_attempt = :n"
                " WHERE id = :id"
            ),
            {"n": int(action.removeprefix("hold_card_")), "id": window_id},
        )


def downgrade() -> None:
    connection = op.get_bind()
    rows = connection.execute(
        sa.text(
            "SELECT id, pending_attempt FROM billing_windows WHERE pending_action = 'hold_card'"
        )
    ).all()
    for window_id, attempt in rows:
        connection.execute(
            sa.text("UPDATE billing_windows SET pending_action = :action WHERE id = :id"),
            {"action": f"hold_card_{attempt}", "id": window_id},
        )
    with op.batch_alter_table("session_refunds", schema=None) as batch_op:
        batch_op.drop_column("last_error")
        batch_op.drop_column("retry_at")
    with op.batch_alter_table("billing_windows", schema=None) as batch_op:
        batch_op.drop_column("pending_attempt")
    with op.batch_alter_table("call_sessions", schema=None) as batch_op:
        batch_op.drop_column("refund_reserved_cents")
        batch_op.drop_column("guest_away_since")
        batch_op.drop_column("unconfirmed_ms")
        batch_op.drop_column("currency")
        batch_op.drop_column("reconnect_grace_seconds")
