"""call_sessions.card_brand and card_last4: the card a call was paid with, for its receipt

Filled from the payment provider when the card is attached (at the start, and when the guest
changes card during the call). Calls from before stay without them: their receipts say only
"your card".

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("call_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("card_brand", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("card_last4", sa.String(length=4), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("call_sessions", schema=None) as batch_op:
        batch_op.drop_column("card_last4")
        batch_op.drop_column("card_brand")
