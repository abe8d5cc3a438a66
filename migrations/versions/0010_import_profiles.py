"""Staged profile lines and the line each store row was written from: a later delivery's unchanged lines recorded by set operations

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 11:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('import_profiles',
    sa.Column('run_id', sa.String(length=64), nullable=False),
    sa.Column('line_no', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('kii_user_id', sa.String(length=64), nullable=False),
    sa.Column('digest', sa.String(length=40), nullable=False),
    sa.Column('has_password', sa.Boolean(), nullable=True),
    sa.Column('contested', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('run_id', 'line_no', name=op.f('pk_import_profiles'))
    )
    with op.batch_alter_table('import_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('profiles_staged', sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table('legacy_users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('import_digest', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('import_flags', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('import_reason', sa.String(length=48), nullable=True))


def downgrade():
    with op.batch_alter_table('legacy_users', schema=None) as batch_op:
        batch_op.drop_column('import_reason')
        batch_op.drop_column('import_flags')
        batch_op.drop_column('import_digest')
    with op.batch_alter_table('import_runs', schema=None) as batch_op:
        batch_op.drop_column('profiles_staged')
    op.drop_table('import_profiles')
