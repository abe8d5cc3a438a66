"""Access keys for the SigV4-signed admin operations

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 03:20:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('access_keys',
    sa.Column('access_key_id', sa.String(length=20), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('sealed_secret', sa.String(length=255), nullable=False),
    sa.Column('operations', sa.Text(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('access_key_id', name=op.f('pk_access_keys')),
    sa.UniqueConstraint('name', name=op.f('uq_access_keys_name'))
    )


def downgrade():
    op.drop_table('access_keys')
