"""The counter review's one-time notice and the documents uploaded for it (policy.md §9).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("reviews") as batch:
        batch.add_column(sa.Column("document_request", sa.Text(), nullable=True))
        batch.add_column(sa.Column("documents_requested_at", TS, nullable=True))
        batch.add_column(sa.Column("days_left", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("documents", sa.JSON(), nullable=True))
    op.create_table(
        "documents",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("case_id", sa.String(32), nullable=False),
        sa.Column("review_id", sa.String(32), nullable=False),
        sa.Column("item", sa.SmallInteger(), nullable=False),
        sa.Column("media_type", sa.String(32), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("uploaded_by", sa.Integer(), nullable=False),
        sa.Column("uploaded_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_documents_case_id_cases"),
        sa.ForeignKeyConstraint(
            ["review_id"], ["reviews.id"], name="fk_documents_review_id_reviews"
        ),
        sa.ForeignKeyConstraint(
            ["uploaded_by"], ["clients.id"], name="fk_documents_uploaded_by_clients"
        ),
        sa.PrimaryKeyConstraint("seq", name="pk_documents"),
        sa.UniqueConstraint("id", name="uq_documents_id"),
    )
    op.create_index("ix_documents_case_id_seq", "documents", ["case_id", "seq"])


def downgrade() -> None:
    op.drop_index("ix_documents_case_id_seq", table_name="documents")
    op.drop_table("documents")
    with op.batch_alter_table("reviews") as batch:
        batch.drop_column("documents")
        batch.drop_column("days_left")
        batch.drop_column("documents_requested_at")
        batch.drop_column("document_request")
