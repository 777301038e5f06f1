"""One live approval per person (policy.md §5): the register of each person's latest approval.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "live_approvals",
        sa.Column("id_hash", sa.String(64), nullable=False),
        sa.Column("case_id", sa.String(32), nullable=False),
        sa.Column("approved_on", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("id_hash", name="pk_live_approvals"),
    )
    _register_what_exists()


def _register_what_exists() -> None:
    """Each person's latest approval in force, from the cases approved so far."""
    conn = op.get_bind()
    config = op.get_context().config
    key: Any = config.attributes.get("data_key") if config is not None else None
    cases = sa.table(
        "cases", sa.column("id"), sa.column("status"), sa.column("applicant_id_number"),
        sa.column("application_date", sa.Date()),
    )  # fmt: skip
    approved = conn.execute(
        sa.select(cases.c.id, cases.c.applicant_id_number, cases.c.application_date)
        .where(cases.c.status == "approved")
        .order_by(cases.c.application_date)
    ).all()
    if approved and key is None:
        raise RuntimeError("registering existing approvals needs the data key (MIAOPI_DATA_KEY)")
    latest: dict[str, tuple[str, Any]] = {}
    for case_id, sealed_id, day in approved:
        id_number = key.open(sealed_id, "cases.applicant_id_number")
        latest[key.lookup_hash(id_number)] = (case_id, day)
    live = sa.table(
        "live_approvals", sa.column("id_hash"), sa.column("case_id"), sa.column("approved_on")
    )
    for id_hash, (case_id, day) in latest.items():
        conn.execute(sa.insert(live).values(id_hash=id_hash, case_id=case_id, approved_on=day))


def downgrade() -> None:
    op.drop_table("live_approvals")
