"""What verify expects of each user, by the line it was worked out from: a later verify of the same line skips parsing it

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 14:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('verified_lines',
    sa.Column('kii_user_id', sa.String(length=64), nullable=False),
    sa.Column('digest', sa.String(length=40), nullable=False),
    sa.Column('keycloak_id', sa.String(length=36), nullable=False),
    sa.Column('username', sa.String(length=255), nullable=True),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('phone_number', sa.String(length=20), nullable=True),
    sa.Column('base', sa.String(length=40), nullable=True),
    sa.Column('phone', sa.String(length=40), nullable=True),
    sa.Column('locale', sa.String(length=40), nullable=True),
    sa.Column('name', sa.String(length=40), nullable=True),
    sa.Column('custom', sa.String(length=40), nullable=True),
    sa.Column('disabled', sa.Boolean(), nullable=True),
    sa.Column('has_password', sa.Boolean(), nullable=True),
    sa.PrimaryKeyConstraint('kii_user_id', name=op.f('pk_verified_lines'))
    )


def downgrade():
    op.drop_table('verified_lines')
