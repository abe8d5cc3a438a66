"""Authenticator apps: secrets asked for and not confirmed yet

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 02:10:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('pending_software_tokens',
    sa.Column('keycloak_user_id', sa.String(length=36), nullable=False),
    sa.Column('sealed_secret', sa.String(length=255), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('keycloak_user_id', name=op.f('pk_pending_software_tokens'))
    )
    with op.batch_alter_table('pending_software_tokens', schema=None) as batch_op:
        batch_op.create_index('ix_pending_software_tokens_expires_at', ['expires_at'], unique=False)


def downgrade():
    with op.batch_alter_table('pending_software_tokens', schema=None) as batch_op:
        batch_op.drop_index('ix_pending_software_tokens_expires_at')
    op.drop_table('pending_software_tokens')
