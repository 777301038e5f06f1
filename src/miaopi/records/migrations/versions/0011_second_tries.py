"""The automatic second tries of referrals owed only to registries (policy.md §9).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "second_tries",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("case_id", sa.String(32), nullable=False),
        sa.Column("attempt", sa.SmallInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("lease_until", TS, nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("approval_number", sa.String(32), nullable=True),
        sa.Column("decision", sa.JSON(), nullable=True),
        sa.Column("evidence", sa.Text(), nullable=True),
        sa.Column("decided_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_second_tries_case_id_cases"),
        sa.PrimaryKeyConstraint("seq", name="pk_second_tries"),
        sa.UniqueConstraint("id", name="uq_second_tries_id"),
        sa.UniqueConstraint("approval_number", name="uq_second_tries_approval_number"),
        sa.UniqueConstraint("case_id", "attempt", name="uq_second_tries_case_id_attempt"),
    )
    op.create_index("ix_second_tries_status_due_at", "second_tries", ["status", "due_at"])


def downgrade() -> None:
    op.drop_index("ix_second_tries_status_due_at", table_name="second_tries")
    op.drop_table("second_tries")
