"""The ledger's compact half: a later delivery's unchanged lines without the identifier indexes the store already answers

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 15:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('import_unchanged',
    sa.Column('run_id', sa.String(length=64), nullable=False),
    sa.Column('line_no', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('kii_user_id', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.String(length=48), nullable=True),
    sa.Column('flags', sa.Integer(), nullable=False),
    sa.Column('hash_line_no', sa.BigInteger(), nullable=True),
    sa.Column('hash_outcome', sa.String(length=16), nullable=True),
    sa.PrimaryKeyConstraint('run_id', 'line_no', name=op.f('pk_import_unchanged'))
    )
    with op.batch_alter_table('import_unchanged', schema=None) as batch_op:
        batch_op.create_index('ix_import_unchanged_run_id_kii_user_id', ['run_id', 'kii_user_id'],
                              unique=False)


def downgrade():
    with op.batch_alter_table('import_unchanged', schema=None) as batch_op:
        batch_op.drop_index('ix_import_unchanged_run_id_kii_user_id')
    op.drop_table('import_unchanged')
