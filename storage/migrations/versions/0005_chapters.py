"""summaries.chapters: a long recording's timestamped sections with their own summaries

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 10:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("summaries") as batch:
        batch.add_column(sa.Column("chapters", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("summaries") as batch:
        batch.drop_column("chapters")
