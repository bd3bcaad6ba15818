"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-25 05:15:01.373159
"""

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('recordings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('original_name', sa.String(length=512), nullable=False),
    sa.Column('duration_s', sa.Float(), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('stored_path', sa.String(length=1024), nullable=False),
    sa.Column('uploader', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('sha256', 'uploader', name='uq_recording_sha_uploader')
    )
    with op.batch_alter_table('recordings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recordings_sha256'), ['sha256'], unique=False)
        batch_op.create_index(batch_op.f('ix_recordings_uploader'), ['uploader'], unique=False)

    op.create_table('transcripts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('recording_id', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.String(length=256), nullable=False),
    sa.Column('language', sa.String(length=16), nullable=False),
    sa.Column('language_probability', sa.Float(), nullable=False),
    sa.Column('segments', sa.JSON(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('latency_s', sa.Float(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['recording_id'], ['recordings.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('recording_id', 'model_id', name='uq_transcript_recording_model')
    )
    with op.batch_alter_table('transcripts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_transcripts_recording_id'), ['recording_id'], unique=False)

    op.create_table('summaries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('recording_id', sa.Integer(), nullable=False),
    sa.Column('transcript_id', sa.Integer(), nullable=True),
    sa.Column('query', sa.Text(), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('key_points', sa.JSON(), nullable=False),
    sa.Column('system', sa.String(length=64), nullable=False),
    sa.Column('model_version', sa.String(length=256), nullable=False),
    sa.Column('decoding', sa.JSON(), nullable=False),
    sa.Column('latency_s', sa.Float(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['recording_id'], ['recordings.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['transcript_id'], ['transcripts.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('summaries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_summaries_recording_id'), ['recording_id'], unique=False)

    op.create_table('ab_votes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('left_summary_id', sa.Integer(), nullable=False),
    sa.Column('right_summary_id', sa.Integer(), nullable=False),
    sa.Column('pair', sa.String(length=64), nullable=False),
    sa.Column('voter', sa.String(length=128), nullable=False),
    sa.Column('choice', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("choice IN ('left', 'right', 'tie', 'both_bad')", name='ck_ab_choice'),
    sa.CheckConstraint('left_summary_id <> right_summary_id', name='ck_ab_distinct'),
    sa.ForeignKeyConstraint(['left_summary_id'], ['summaries.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['right_summary_id'], ['summaries.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('pair', 'voter', name='uq_ab_pair_voter')
    )
    with op.batch_alter_table('ab_votes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ab_votes_left_summary_id'), ['left_summary_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ab_votes_right_summary_id'), ['right_summary_id'], unique=False)

    op.create_table('thumb_votes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('summary_id', sa.Integer(), nullable=False),
    sa.Column('voter', sa.String(length=128), nullable=False),
    sa.Column('value', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('value IN (-1, 1)', name='ck_thumb_value'),
    sa.ForeignKeyConstraint(['summary_id'], ['summaries.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('summary_id', 'voter', name='uq_thumb_summary_voter')
    )
    with op.batch_alter_table('thumb_votes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_thumb_votes_summary_id'), ['summary_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('thumb_votes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_thumb_votes_summary_id'))

    op.drop_table('thumb_votes')
    with op.batch_alter_table('ab_votes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ab_votes_right_summary_id'))
        batch_op.drop_index(batch_op.f('ix_ab_votes_left_summary_id'))

    op.drop_table('ab_votes')
    with op.batch_alter_table('summaries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_summaries_recording_id'))

    op.drop_table('summaries')
    with op.batch_alter_table('transcripts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_transcripts_recording_id'))

    op.drop_table('transcripts')
    with op.batch_alter_table('recordings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recordings_uploader'))
        batch_op.drop_index(batch_op.f('ix_recordings_sha256'))

    op.drop_table('recordings')
