"""Post-hoc supervision: spot-check periods and draws, audit tasks, fraud bars, case history.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("revoked_at", TS, nullable=True))
        batch.add_column(sa.Column("revocation_reason", sa.Text(), nullable=True))
    with op.batch_alter_table("supervision_queue") as batch:
        batch.add_column(sa.Column("rechecked_at", TS, nullable=True))
        batch.add_column(sa.Column("recheck_result", sa.String(16), nullable=True))
        batch.create_index("ix_supervision_queue_state_queued_at", ["state", "queued_at"])
    op.create_table(
        "audit_periods",
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("seed", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("period", name="pk_audit_periods"),
    )
    op.create_table(
        "spot_check_draws",
        sa.Column("case_id", sa.String(32), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("risk_class", sa.String(1), nullable=True),
        sa.Column("rate", sa.String(24), nullable=False),
        sa.Column("selected", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name="fk_spot_check_draws_case_id_cases"
        ),
        sa.ForeignKeyConstraint(
            ["period"], ["audit_periods.period"], name="fk_spot_check_draws_period_audit_periods"
        ),
        sa.PrimaryKeyConstraint("case_id", name="pk_spot_check_draws"),
    )
    op.create_index("ix_spot_check_draws_period_case_id", "spot_check_draws", ["period", "case_id"])
    op.create_table(
        "audit_tasks",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("case_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("auditor_id", sa.Integer(), nullable=True),
        sa.Column("employer_region", sa.String(6), nullable=True),
        sa.Column("period", sa.String(7), nullable=True),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("assigned_at", TS, nullable=True),
        sa.Column("discrepancy", sa.JSON(), nullable=True),
        sa.Column("findings", sa.JSON(), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("closed_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_audit_tasks_case_id_cases"),
        sa.ForeignKeyConstraint(
            ["auditor_id"], ["clients.id"], name="fk_audit_tasks_auditor_id_clients"
        ),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_tasks"),
        sa.UniqueConstraint("id", name="uq_audit_tasks_id"),
        sa.UniqueConstraint("case_id", "kind", name="uq_audit_tasks_case_id_kind"),
    )
    op.create_index("ix_audit_tasks_auditor_id_seq", "audit_tasks", ["auditor_id", "seq"])
    op.create_index("ix_audit_tasks_status_seq", "audit_tasks", ["status", "seq"])
    op.create_table(
        "fraud_bars",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("id_number", sa.Text(), nullable=False),
        sa.Column("barred_on", sa.Date(), nullable=False),
        sa.Column("case_id", sa.String(32), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_fraud_bars_case_id_cases"),
        sa.PrimaryKeyConstraint("id", name="pk_fraud_bars"),
        sa.UniqueConstraint("case_id", name="uq_fraud_bars_case_id"),
    )
    op.create_index("ix_fraud_bars_id_number", "fraud_bars", ["id_number"])
    op.create_table(
        "case_events",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.String(32), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_case_events_case_id_cases"),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["clients.id"], name="fk_case_events_actor_id_clients"
        ),
        sa.PrimaryKeyConstraint("seq", name="pk_case_events"),
    )
    op.create_index("ix_case_events_case_id_seq", "case_events", ["case_id", "seq"])
    # Cases decided before this revision get their "decided" event, so every case has a history.
    insert = (
        "INSERT INTO case_events (case_id, at, event, status, actor_id, detail) "
        "SELECT id, decided_at, 'decided', outcome, submitted_by, {} FROM cases ORDER BY seq"
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    op.execute(insert.format("CAST('{}' AS JSON)" if postgres else "'{}'"))


def downgrade() -> None:
    for table in ("case_events", "fraud_bars", "audit_tasks", "spot_check_draws", "audit_periods"):
        op.drop_table(table)
    with op.batch_alter_table("supervision_queue") as batch:
        batch.drop_index("ix_supervision_queue_state_queued_at")
        batch.drop_column("recheck_result")
        batch.drop_column("rechecked_at")
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("revocation_reason")
        batch.drop_column("revoked_at")
