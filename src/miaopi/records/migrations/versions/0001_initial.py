"""Initial schema: clients, rulesets, cases, idempotency keys, approval counters, supervision.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "clients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key_prefix", sa.String(16), nullable=False),
        sa.Column("key_salt", sa.String(32), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("uscc", sa.String(18), nullable=True),
        sa.Column("district", sa.String(6), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_clients"),
        sa.UniqueConstraint("key_prefix", name="uq_clients_key_prefix"),
    )
    op.create_table(
        "rulesets",
        sa.Column("fingerprint", sa.String(80), nullable=False),
        sa.Column("business_type", sa.String(32), nullable=False),
        sa.Column("version", sa.String(16), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("first_used_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("fingerprint", name="pk_rulesets"),
    )
    op.create_table(
        "cases",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("business_type", sa.String(32), nullable=False),
        sa.Column("applicant_name", sa.Text(), nullable=False),
        sa.Column("applicant_id_number", sa.Text(), nullable=False),
        sa.Column("employer_uscc", sa.String(18), nullable=False),
        sa.Column("employer_name", sa.Text(), nullable=True),
        sa.Column("submitted_by", sa.Integer(), nullable=False),
        sa.Column("approval_number", sa.String(32), nullable=True),
        sa.Column("application_date", sa.Date(), nullable=False),
        sa.Column("ruleset_fingerprint", sa.String(80), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("decision", sa.JSON(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("submitted_at", TS, nullable=False),
        sa.Column("decided_at", TS, nullable=False),
        sa.Column("elapsed_ms", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["submitted_by"], ["clients.id"], name="fk_cases_submitted_by_clients"
        ),
        sa.ForeignKeyConstraint(
            ["ruleset_fingerprint"],
            ["rulesets.fingerprint"],
            name="fk_cases_ruleset_fingerprint_rulesets",
        ),
        sa.PrimaryKeyConstraint("seq", name="pk_cases"),
        sa.UniqueConstraint("id", name="uq_cases_id"),
        sa.UniqueConstraint("approval_number", name="uq_cases_approval_number"),
    )
    op.create_index("ix_cases_employer_uscc_seq", "cases", ["employer_uscc", "seq"])
    op.create_index("ix_cases_submitted_by_seq", "cases", ["submitted_by", "seq"])
    op.create_index("ix_cases_status_seq", "cases", ["status", "seq"])
    op.create_table(
        "idempotency_keys",
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("case_id", sa.String(32), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name="fk_idempotency_keys_client_id_clients"
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name="fk_idempotency_keys_case_id_cases"
        ),
        sa.PrimaryKeyConstraint("client_id", "key", name="pk_idempotency_keys"),
    )
    op.create_table(
        "approval_counters",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("year", name="pk_approval_counters"),
    )
    op.create_table(
        "supervision_queue",
        sa.Column("case_id", sa.String(32), nullable=False),
        sa.Column("queued_at", TS, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name="fk_supervision_queue_case_id_cases"
        ),
        sa.PrimaryKeyConstraint("case_id", name="pk_supervision_queue"),
    )


def downgrade() -> None:
    for table in (
        "supervision_queue",
        "approval_counters",
        "idempotency_keys",
        "cases",
        "rulesets",
        "clients",
    ):
        op.drop_table(table)
