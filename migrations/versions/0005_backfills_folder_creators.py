"""context backfills (FEP-f228 queue) and resource folder creators

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 19:55:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import t3r1_fed.db.models

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # context_backfills: FEP-f228 backfill queue of remote threads' context collections,
    # rate-limited per context (issue #3; inbox/backfill.py).
    op.create_table('context_backfills',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('context', sa.String(length=2048), nullable=False),
    sa.Column('group_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('due_at', t3r1_fed.db.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('locked_until', t3r1_fed.db.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('fetched_at', t3r1_fed.db.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('stored_items', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', t3r1_fed.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['actors.id'], name=op.f('fk_context_backfills_group_id_actors'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_context_backfills')),
    sa.UniqueConstraint('context', name=op.f('uq_context_backfills_context'))
    )
    with op.batch_alter_table('context_backfills', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_context_backfills_due_at'), ['due_at'], unique=False)
    # resource_folders.creator_id: the member who made a folder may rename and move it
    # (issue #3, folders rename/move/delete; coops/folders.py).
    with op.batch_alter_table('resource_folders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('creator_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_resource_folders_creator_id_actors'), 'actors', ['creator_id'], ['id'], ondelete='SET NULL')


def downgrade() -> None:
    # context_backfills (FEP-f228 backfill queue)
    with op.batch_alter_table('context_backfills', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_context_backfills_due_at'))
    op.drop_table('context_backfills')
    # resource_folders.creator_id (folders rename/move/delete)
    with op.batch_alter_table('resource_folders', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_resource_folders_creator_id_actors'), type_='foreignkey')
        batch_op.drop_column('creator_id')
