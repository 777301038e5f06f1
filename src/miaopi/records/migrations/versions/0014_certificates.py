"""Approval certificates and the keys that sign them (policy.md §11).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(64), nullable=False),
        sa.Column("public_jwk", sa.JSON(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("retired_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("kid", name="pk_signing_keys"),
    )
    op.create_table(
        "certificates",
        sa.Column("case_id", sa.String(32), nullable=False),
        sa.Column("approval_number", sa.String(32), nullable=False),
        sa.Column("kid", sa.String(64), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("issued_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_certificates_case_id_cases"),
        sa.ForeignKeyConstraint(
            ["kid"], ["signing_keys.kid"], name="fk_certificates_kid_signing_keys"
        ),
        sa.PrimaryKeyConstraint("case_id", name="pk_certificates"),
        sa.UniqueConstraint("approval_number", name="uq_certificates_approval_number"),
    )


def downgrade() -> None:
    op.drop_table("certificates")
    op.drop_table("signing_keys")
