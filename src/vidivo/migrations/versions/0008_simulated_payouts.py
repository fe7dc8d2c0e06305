"""sim_payment_intents.captured_at and sim_refunds.application_fee_refunded: the simulated
provider's records of when money reached a host's balance and how much a refund took back,
from which it makes the host's daily payouts

Rows from before: a captured intent counts from its creation, and a refund as handing back
no fee (the simulated provider's data is test data; nothing real is paid out).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from vidivo.core.db import UTCDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sim_payment_intents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("captured_at", UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table("sim_refunds", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("application_fee_refunded", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("sim_refunds", schema=None) as batch_op:
        batch_op.drop_column("application_fee_refunded")
    with op.batch_alter_table("sim_payment_intents", schema=None) as batch_op:
        batch_op.drop_column("captured_at")
