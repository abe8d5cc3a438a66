"""codes bound to their address, withdrawn codes, wrong entries per subject

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 20:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('verification_codes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('voided_at', sa.DateTime(), nullable=True))
        batch_op.create_index('ix_verification_codes_expires_at', ['expires_at'], unique=False)
    # Codes issued before were bound to no address: withdrawn (their users ask for new ones).
    op.execute(sa.text("UPDATE verification_codes SET voided_at = CURRENT_TIMESTAMP WHERE voided_at IS NULL"))

    op.create_table('code_failures',
    sa.Column('subject', sa.String(length=64), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('window_started_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('subject', name=op.f('pk_code_failures'))
    )
    with op.batch_alter_table('code_failures', schema=None) as batch_op:
        batch_op.create_index('ix_code_failures_window_started_at', ['window_started_at'], unique=False)


def downgrade():
    with op.batch_alter_table('code_failures', schema=None) as batch_op:
        batch_op.drop_index('ix_code_failures_window_started_at')
    op.drop_table('code_failures')

    with op.batch_alter_table('verification_codes', schema=None) as batch_op:
        batch_op.drop_index('ix_verification_codes_expires_at')
        batch_op.drop_column('voided_at')
