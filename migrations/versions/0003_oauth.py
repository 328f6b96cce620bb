"""oauth: applications, authorization codes, access tokens

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 18:25:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import t3r1_fed.db.models

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
UTC = t3r1_fed.db.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('oauth_apps',
    sa.Column('id', BIG, autoincrement=True, nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('client_secret_hash', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('website', sa.String(length=2048), nullable=True),
    sa.Column('redirect_uris', sa.Text(), nullable=False),
    sa.Column('scopes', sa.String(length=1024), nullable=False),
    sa.Column('created_at', UTC, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oauth_apps')),
    sa.UniqueConstraint('client_id', name=op.f('uq_oauth_apps_client_id'))
    )
    op.create_table('oauth_codes',
    sa.Column('id', BIG, autoincrement=True, nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('app_id', BIG, nullable=False),
    sa.Column('user_id', BIG, nullable=False),
    sa.Column('redirect_uri', sa.String(length=2048), nullable=False),
    sa.Column('scopes', sa.String(length=1024), nullable=False),
    sa.Column('code_challenge', sa.String(length=128), nullable=True),
    sa.Column('expires_at', UTC, nullable=False),
    sa.Column('created_at', UTC, nullable=False),
    sa.ForeignKeyConstraint(['app_id'], ['oauth_apps.id'], name=op.f('fk_oauth_codes_app_id_oauth_apps'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_oauth_codes_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oauth_codes')),
    sa.UniqueConstraint('code_hash', name=op.f('uq_oauth_codes_code_hash'))
    )
    op.create_table('oauth_tokens',
    sa.Column('id', BIG, autoincrement=True, nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('app_id', BIG, nullable=False),
    sa.Column('user_id', BIG, nullable=True),
    sa.Column('scopes', sa.String(length=1024), nullable=False),
    sa.Column('revoked_at', UTC, nullable=True),
    sa.Column('created_at', UTC, nullable=False),
    sa.ForeignKeyConstraint(['app_id'], ['oauth_apps.id'], name=op.f('fk_oauth_tokens_app_id_oauth_apps'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_oauth_tokens_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oauth_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_oauth_tokens_token_hash'))
    )
    op.create_index(op.f('ix_oauth_tokens_app_id'), 'oauth_tokens', ['app_id'], unique=False)
    op.create_index(op.f('ix_oauth_tokens_user_id'), 'oauth_tokens', ['user_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_oauth_tokens_user_id'), table_name='oauth_tokens')
    op.drop_index(op.f('ix_oauth_tokens_app_id'), table_name='oauth_tokens')
    op.drop_table('oauth_tokens')
    op.drop_table('oauth_codes')
    op.drop_table('oauth_apps')
