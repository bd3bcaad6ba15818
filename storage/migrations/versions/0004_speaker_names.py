"""speaker_names: the names users give a recording's diarized speakers

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "speaker_names",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recording_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["recording_id"], ["recordings.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("recording_id", "label", name="uq_speaker_recording_label"),
    )
    op.create_index("ix_speaker_names_recording_id", "speaker_names", ["recording_id"])


def downgrade() -> None:
    op.drop_index("ix_speaker_names_recording_id", table_name="speaker_names")
    op.drop_table("speaker_names")
