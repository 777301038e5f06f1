"""Application batches (graduate season).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.Column("request_hash", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("completed_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"], name="fk_batches_client_id_clients"),
        sa.PrimaryKeyConstraint("seq", name="pk_batches"),
        sa.UniqueConstraint("id", name="uq_batches_id"),
        sa.UniqueConstraint(
            "client_id", "idempotency_key", name="uq_batches_client_id_idempotency_key"
        ),
    )
    op.create_table(
        "batch_items",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("batch_id", sa.String(32), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("item_key", sa.String(100), nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("case_id", sa.String(32), nullable=True),
        sa.Column("errors", sa.JSON(), nullable=True),
        sa.Column("lease_until", TS, nullable=True),
        sa.Column("decided_at", TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batches.id"], name="fk_batch_items_batch_id_batches"
        ),
        sa.PrimaryKeyConstraint("seq", name="pk_batch_items"),
        sa.UniqueConstraint("batch_id", "row", name="uq_batch_items_batch_id_row"),
    )
    op.create_index("ix_batch_items_status_seq", "batch_items", ["status", "seq"])


def downgrade() -> None:
    op.drop_index("ix_batch_items_status_seq", table_name="batch_items")
    op.drop_table("batch_items")
    op.drop_table("batches")
