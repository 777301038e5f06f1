"""A later objection opens a task of its own once the case's objection task is closed.

One task of each kind per case stays the rule, except that a closed objection task no longer
counts: a unique index on (case_id, kind) for every task but closed objections replaces the
unique constraint.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

_OPEN_OR_NOT_OBJECTION = sa.text("kind <> 'objection' OR status <> 'closed'")


def upgrade() -> None:
    with op.batch_alter_table("audit_tasks") as batch:
        batch.drop_constraint("uq_audit_tasks_case_id_kind", type_="unique")
    op.create_index(
        "uq_audit_tasks_case_id_kind", "audit_tasks", ["case_id", "kind"], unique=True,
        sqlite_where=_OPEN_OR_NOT_OBJECTION, postgresql_where=_OPEN_OR_NOT_OBJECTION,
    )  # fmt: skip


def downgrade() -> None:
    op.drop_index("uq_audit_tasks_case_id_kind", table_name="audit_tasks")
    with op.batch_alter_table("audit_tasks") as batch:
        batch.create_unique_constraint("uq_audit_tasks_case_id_kind", ["case_id", "kind"])
