"""The stages after an approval: household registration, entitlement payments (policy §11).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_stages",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("case_id", sa.String(32), nullable=False),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("on_day", sa.Date(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("recorded_by", sa.Integer(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_case_stages_case_id_cases"),
        sa.ForeignKeyConstraint(
            ["recorded_by"], ["clients.id"], name="fk_case_stages_recorded_by_clients"
        ),
        sa.PrimaryKeyConstraint("seq", name="pk_case_stages"),
        sa.UniqueConstraint("id", name="uq_case_stages_id"),
        sa.UniqueConstraint(
            "case_id", "stage", "subject", name="uq_case_stages_case_id_stage_subject"
        ),
    )


def downgrade() -> None:
    op.drop_table("case_stages")
