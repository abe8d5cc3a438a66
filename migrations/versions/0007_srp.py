"""SRP sign-in: users' verifiers, challenges already answered

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 23:45:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('srp_verifiers',
    sa.Column('keycloak_user_id', sa.String(length=36), nullable=False),
    sa.Column('username', sa.String(length=255), nullable=False),
    sa.Column('pool', sa.String(length=64), nullable=False),
    sa.Column('salt', sa.String(length=64), nullable=False),
    sa.Column('verifier', sa.Text(), nullable=False),
    sa.Column('password_mac', sa.String(length=64), nullable=True),
    sa.Column('credential_id', sa.String(length=36), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('keycloak_user_id', name=op.f('pk_srp_verifiers'))
    )
    op.create_table('srp_spent_challenges',
    sa.Column('block_id', sa.String(length=32), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('block_id', name=op.f('pk_srp_spent_challenges'))
    )
    with op.batch_alter_table('srp_spent_challenges', schema=None) as batch_op:
        batch_op.create_index('ix_srp_spent_challenges_expires_at', ['expires_at'], unique=False)


def downgrade():
    with op.batch_alter_table('srp_spent_challenges', schema=None) as batch_op:
        batch_op.drop_index('ix_srp_spent_challenges_expires_at')
    op.drop_table('srp_spent_challenges')
    op.drop_table('srp_verifiers')
