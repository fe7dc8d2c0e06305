"""billing_windows.pending_guest_present: whether the in-flight hold is made with the guest at
the keyboard, fixed when the action starts

A hold on a card given in the call is now made with the guest present (it may ask for 3-D
Secure); before, it was made off-session. A replay must send what the first try sent (same
idempotency key, same parameters), so the choice is stored with the action. The backfill keeps
what earlier releases sent: only the first hold of a call was made with the guest present.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("billing_windows", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "pending_guest_present", sa.Boolean(), server_default=sa.false(), nullable=False
            )
        )
    op.execute(
        "UPDATE billing_windows SET pending_guest_present = TRUE "
        "WHERE pending_action = 'hold' AND number = 1"
    )


def downgrade() -> None:
    with op.batch_alter_table("billing_windows", schema=None) as batch_op:
        batch_op.drop_column("pending_guest_present")
