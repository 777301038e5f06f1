"""The applicant's own view and the public notice (policy.md §11): access codes, the keyed hash
of the ID number on cases and registry queries, objections; the employer's district on cases
and an index by application date, for the notice and the reports (§12).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

from miaopi.evidence.recorded import employer_region

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

DRY_RUN = sa.text("purpose = 'dry_run'")


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("access_code_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("applicant_id_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("employer_region", sa.String(6), nullable=True))
        batch.create_index("ix_cases_report", [
            "application_date", "business_type", "employer_region", "employer_uscc", "outcome",
            "status", "elapsed_ms", "id", "submitted_at",
        ])  # fmt: skip
    with op.batch_alter_table("registry_queries") as batch:
        batch.add_column(sa.Column("subject_hash", sa.String(64), nullable=True))
    op.create_index(
        "ix_registry_queries_dry_run_subject", "registry_queries", ["subject_hash", "seq"],
        sqlite_where=DRY_RUN, postgresql_where=DRY_RUN,
    )  # fmt: skip
    op.create_table(
        "objections",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("case_id", sa.String(32), nullable=False),
        sa.Column("approval_number", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("address_hash", sa.String(64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("task_id", sa.String(32), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_objections_case_id_cases"),
        sa.PrimaryKeyConstraint("seq", name="pk_objections"),
        sa.UniqueConstraint("id", name="uq_objections_id"),
    )
    op.create_index("ix_objections_case_id_seq", "objections", ["case_id", "seq"])
    _hash_what_exists()


def _hash_what_exists() -> None:
    """The keyed hash of the ID number on the cases so far and on their queries. (Their
    access codes were never given: the submitter issues one, POST …/access-code.)"""
    conn = op.get_bind()
    config = op.get_context().config
    key: Any = config.attributes.get("data_key") if config is not None else None
    cases = sa.table(
        "cases", sa.column("id"), sa.column("applicant_id_number"), sa.column("evidence"),
        sa.column("applicant_id_hash"), sa.column("employer_region"),
    )  # fmt: skip
    queries = sa.table("registry_queries", sa.column("case_id"), sa.column("subject_hash"))
    rows = conn.execute(
        sa.select(cases.c.id, cases.c.applicant_id_number, cases.c.evidence)
    ).all()
    if rows and key is None:
        raise RuntimeError("hashing the ID numbers of existing cases needs the data key")
    for case_id, sealed_id, sealed_evidence in rows:
        id_hash = key.lookup_hash(key.open(sealed_id, "cases.applicant_id_number"))
        evidence = json.loads(key.open(sealed_evidence, "cases.evidence"))
        conn.execute(sa.update(cases).where(cases.c.id == case_id).values(
            applicant_id_hash=id_hash, employer_region=employer_region(evidence),
        ))  # fmt: skip
        conn.execute(sa.update(queries).where(queries.c.case_id == case_id)
                     .values(subject_hash=id_hash))  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_objections_case_id_seq", table_name="objections")
    op.drop_table("objections")
    op.drop_index("ix_registry_queries_dry_run_subject", table_name="registry_queries")
    with op.batch_alter_table("registry_queries") as batch:
        batch.drop_column("subject_hash")
    with op.batch_alter_table("cases") as batch:
        batch.drop_index("ix_cases_report")
        batch.drop_column("employer_region")
        batch.drop_column("applicant_id_hash")
        batch.drop_column("access_code_hash")
