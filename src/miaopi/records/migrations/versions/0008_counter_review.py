"""The counter review of referred cases (policy.md §9).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "reviews",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("case_id", sa.String(32), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("employer_region", sa.String(6), nullable=True),
        sa.Column("referred_on", sa.Date(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("officer_id", sa.Integer(), nullable=True),
        sa.Column("claimed_at", TS, nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("approval_number", sa.String(32), nullable=True),
        sa.Column("resolutions", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("entitlements", sa.JSON(), nullable=True),
        sa.Column("decided_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_reviews_case_id_cases"),
        sa.ForeignKeyConstraint(
            ["officer_id"], ["clients.id"], name="fk_reviews_officer_id_clients"
        ),
        sa.PrimaryKeyConstraint("seq", name="pk_reviews"),
        sa.UniqueConstraint("id", name="uq_reviews_id"),
        sa.UniqueConstraint("case_id", name="uq_reviews_case_id"),
        sa.UniqueConstraint("approval_number", name="uq_reviews_approval_number"),
    )
    op.create_index("ix_reviews_status_seq", "reviews", ["status", "seq"])
    op.create_index("ix_reviews_officer_id_seq", "reviews", ["officer_id", "seq"])


def downgrade() -> None:
    op.drop_index("ix_reviews_officer_id_seq", table_name="reviews")
    op.drop_index("ix_reviews_status_seq", table_name="reviews")
    op.drop_table("reviews")
