"""The tamper-evident ledger, and its entries for what was recorded before it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ledger",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("case_id", sa.String(32), nullable=False),
        sa.Column("subject_id", sa.String(32), nullable=False),
        sa.Column("record_hash", sa.String(64), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("entry_hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_ledger"),
        sa.UniqueConstraint("entry_hash", name="uq_ledger_entry_hash"),
    )
    op.create_table(
        "ledger_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_head"),
    )
    head = sa.table("ledger_head", sa.column("id"), sa.column("last_seq"), sa.column("last_hash"))
    op.bulk_insert(head, [{"id": 1, "last_seq": 0, "last_hash": "0" * 64}])
    _chain_what_exists()


def _chain_what_exists() -> None:
    # The ledger's own record functions: they are the stored format, so they are stable.
    from miaopi.records import ledger
    from miaopi.records.tables import UTCDateTime

    # The tables as they were at this revision (later ones seal some of these columns).
    def cols(*names: str, json: tuple[str, ...] = (), times: tuple[str, ...] = ()) -> list:
        return (
            [sa.column(n) for n in names]
            + [sa.column(n, sa.JSON()) for n in json]
            + [sa.column(n, UTCDateTime()) for n in times]
        )

    cases = sa.table(
        "cases",
        *cols(
            "seq", "id", "status", "outcome", "business_type", "approval_number",
            "ruleset_fingerprint", "applicant_name", "applicant_id_number", "employer_uscc",
            "submitted_by", "revocation_reason",
            json=("request", "decision", "evidence"), times=("decided_at", "revoked_at"),
        ),
        sa.column("application_date", sa.Date()),
    )  # fmt: skip
    audit_tasks = sa.table(
        "audit_tasks",
        *cols(
            "id", "case_id", "kind", "auditor_id", "outcome", "reason", "status",
            json=("findings",), times=("closed_at",),
        ),
    )  # fmt: skip

    conn = op.get_bind()
    changes = []
    for case in conn.execute(sa.select(cases).order_by(cases.c.seq)):
        changes.append(
            (case.decided_at, 0, "decision", case.id, case.id, ledger.decision_record(case))
        )
        if case.status == "revoked":
            changes.append(
                (case.revoked_at, 1, "revocation", case.id, case.id, ledger.revocation_record(case))
            )
    for task in conn.execute(sa.select(audit_tasks).where(audit_tasks.c.status == "closed")):
        changes.append(
            (task.closed_at, 2, "audit_closure", task.case_id, task.id, ledger.closure_record(task))
        )
    for at, _, kind, case_id, subject_id, record in sorted(changes, key=lambda c: (c[0], c[1])):
        ledger.append(conn, kind, case_id, subject_id, record, at)


def downgrade() -> None:
    op.drop_table("ledger_head")
    op.drop_table("ledger")
