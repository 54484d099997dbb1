"""Predictions kept for a correction, and corrections.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "predictions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("digit", sa.SmallInteger(), nullable=False),
        sa.Column("sure", sa.Boolean(), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("image", sa.LargeBinary(), nullable=False),
    )
    op.create_index("ix_predictions_created_at", "predictions", ["created_at"])
    op.create_table(
        "corrections",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("prediction_id", sa.String(32), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("predicted_digit", sa.SmallInteger(), nullable=False),
        sa.Column("right_digit", sa.SmallInteger(), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("image", sa.LargeBinary(), nullable=False),
    )
    op.create_index("ix_corrections_created_at", "corrections", ["created_at"])
    op.create_index("ix_corrections_model_version", "corrections", ["model_version"])


def downgrade() -> None:
    raise NotImplementedError("migrations are additive: a rollback runs the older code against this schema")
