"""The ledger says how each entry's record hash was made.

Entries made before this revision are format 1 (the SHA-256 of the record's canonical JSON).
Decisions recorded from now on are format 2, which PostgreSQL can finish with the approval
number it draws from a digest of the record, so the record itself, personal data in the
clear, is never sent to the server (ledger.py).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A constant default: a change of the catalogue only on PostgreSQL, however long the ledger.
    with op.batch_alter_table("ledger") as batch:
        batch.add_column(
            sa.Column("record_format", sa.SmallInteger(), nullable=False, server_default="1")
        )


def downgrade() -> None:
    with op.batch_alter_table("ledger") as batch:
        batch.drop_column("record_format")
