"""What the reports count (policy.md §12): referral reasons, online certificate checks.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

from miaopi.records import referral_reasons

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "referral_reasons",
        sa.Column("case_id", sa.String(32), nullable=False),
        sa.Column("criterion", sa.String(64), nullable=False),
        sa.Column("result", sa.String(16), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name="fk_referral_reasons_case_id_cases"
        ),
        sa.PrimaryKeyConstraint("case_id", "criterion", name="pk_referral_reasons"),
    )
    op.create_table(
        "certificate_checks",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("case_id", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_certificate_checks"),
    )
    op.create_index("ix_certificate_checks_checked_at", "certificate_checks", ["checked_at"])
    op.create_index(
        "ix_cases_revoked", "cases", ["revoked_at"],
        sqlite_where=sa.text("revoked_at IS NOT NULL"),
        postgresql_where=sa.text("revoked_at IS NOT NULL"),
    )
    _reasons_of_referred_cases()


def _reasons_of_referred_cases() -> None:
    conn = op.get_bind()
    cases = sa.table("cases", sa.column("id"), sa.column("outcome"),
                     sa.column("decision", sa.JSON()))  # fmt: skip
    reasons = sa.table("referral_reasons", sa.column("case_id"), sa.column("criterion"),
                       sa.column("result"))  # fmt: skip
    for case_id, decision in conn.execute(
        sa.select(cases.c.id, cases.c.decision).where(cases.c.outcome == "referred")
    ):
        rows = [
            {"case_id": case_id, "criterion": criterion, "result": result}
            for criterion, result in referral_reasons.of(decision or {})
        ]
        if rows:
            conn.execute(sa.insert(reasons), rows)


def downgrade() -> None:
    op.drop_index("ix_cases_revoked", table_name="cases")
    op.drop_index("ix_certificate_checks_checked_at", table_name="certificate_checks")
    op.drop_table("certificate_checks")
    op.drop_table("referral_reasons")
