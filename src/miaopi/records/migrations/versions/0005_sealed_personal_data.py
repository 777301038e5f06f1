"""Personal data sealed at rest, and fraud bars found by a keyed hash of the ID number.

Seals what earlier revisions stored in plain text, with the data key miaopi hands to the
migration (``config.attributes["data_key"]``). The ledger's records are computed from the
values as read, so sealing changes none of them and the chain stays intact.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# table -> (its key column, the text columns to seal, the JSON columns to seal)
SEALED = {
    "cases": ("id", ("applicant_name", "applicant_id_number", "revocation_reason"),
              ("request", "evidence")),
    "audit_tasks": ("id", ("reason",), ("findings",)),
    "fraud_bars": ("id", ("id_number",), ()),
    "case_events": ("seq", (), ("detail",)),
}  # fmt: skip


def upgrade() -> None:
    with op.batch_alter_table("fraud_bars") as batch:
        batch.add_column(sa.Column("id_hash", sa.String(64), nullable=True))
        batch.drop_index("ix_fraud_bars_id_number")
    for table, (_, _, json_columns) in SEALED.items():
        if json_columns:
            with op.batch_alter_table(table) as batch:
                for column in json_columns:
                    batch.alter_column(
                        column,
                        existing_type=sa.JSON(),
                        type_=sa.Text(),
                        postgresql_using=f"{column}::text",
                    )
    _seal_what_exists()
    with op.batch_alter_table("fraud_bars") as batch:
        batch.alter_column("id_hash", existing_type=sa.String(64), nullable=False)
        batch.create_index("ix_fraud_bars_id_hash", ["id_hash"])


def _seal_what_exists() -> None:
    from miaopi.records.sealing import json_text

    conn = op.get_bind()
    config = op.get_context().config
    key = config.attributes.get("data_key") if config is not None else None
    for table, (pk, text_columns, json_columns) in SEALED.items():
        columns = (*text_columns, *json_columns)
        extra: list[sa.ColumnClause[Any]] = [sa.column("id_hash")] if table == "fraud_bars" else []
        t = sa.table(table, sa.column(pk), *(sa.column(c, sa.Text()) for c in columns), *extra)
        rows = conn.execute(sa.select(t)).all()
        if rows and key is None:
            raise RuntimeError(
                "sealing existing personal data needs the data key (MIAOPI_DATA_KEY)"
            )
        for row in rows:
            assert key is not None  # noqa: S101 - rows without a key raised above
            values = {}
            for column in columns:
                raw = getattr(row, column)
                if raw is None:
                    continue
                if column in json_columns:
                    # Written by SQLAlchemy's JSON type; sealed in the form SealedJSON writes.
                    raw = json_text(json.loads(raw))
                values[column] = key.seal(raw, f"{table}.{column}")
            if table == "fraud_bars":
                values["id_hash"] = key.lookup_hash(row.id_number)
            if values:
                conn.execute(sa.update(t).where(t.c[pk] == row[0]).values(**values))


def downgrade() -> None:
    raise NotImplementedError("sealed data is not unsealed by a downgrade")
