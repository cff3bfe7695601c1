"""Namespace files (Kestra's): each version of each file of a namespace, with its content.

Revision ID: 0060
Revises: 0050
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.mysql import LONGBLOB

revision = "0060"
down_revision = "0050"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "namespace_files",
        sa.Column("namespace", sa.String(255), primary_key=True),
        sa.Column("path", sa.String(400), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column(
            "content",
            sa.LargeBinary().with_variant(LONGBLOB(), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("namespace_files")
