"""The registry access log: every query, with its case or dry run and its purpose.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registry_queries",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.String(32), nullable=True),
        sa.Column("evaluation_id", sa.String(32), nullable=True),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.Integer(), nullable=True),
        sa.Column("registry", sa.String(32), nullable=False),
        sa.Column("query", sa.String(32), nullable=False),
        sa.Column("queried_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("elapsed_ms", sa.Float(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name="fk_registry_queries_case_id_cases"
        ),
        sa.ForeignKeyConstraint(
            ["requested_by"], ["clients.id"], name="fk_registry_queries_requested_by_clients"
        ),
        sa.PrimaryKeyConstraint("seq", name="pk_registry_queries"),
    )
    op.create_index("ix_registry_queries_case_id_seq", "registry_queries", ["case_id", "seq"])
    op.create_index("ix_registry_queries_evaluation_id", "registry_queries", ["evaluation_id"])


def downgrade() -> None:
    op.drop_table("registry_queries")
