"""Classes: a join code, the presenter's session, the roster and challenge results.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "classes",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("code", sa.String(8), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("owner_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("presenter_id", sa.String(32), nullable=False),
        sa.Column("experiment_id", sa.String(32), nullable=True),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_classes_code", "classes", ["code"])
    op.create_index("ix_classes_status", "classes", ["status"])
    op.create_index("ix_classes_created_at", "classes", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_classes_created_at", "classes")
    op.drop_index("ix_classes_status", "classes")
    op.drop_index("ix_classes_code", "classes")
    op.drop_table("classes")
