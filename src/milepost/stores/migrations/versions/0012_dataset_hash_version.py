"""Dataset versions record which content-hash algorithm made their hash.

Revision ID: 0012
Revises: 0009

Hash version 2 canonicalises types before hashing (``string`` and ``large_string``,
timestamp units, integer widths hash alike; see ``milepost/data/_hash.py``), so it gives
other hashes than version 1 for the same data. Existing versions keep their version-1
hash (``server_default`` 1): nothing is rehashed, no snapshot is read. Registering data
again compares its version-2 hash with version-2 rows and, when the dataset has
version-1 rows, its version-1 hash with those, so data registered before the upgrade is
still recognised as the version it is.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dataset_versions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("hash_version", sa.Integer(), nullable=False, server_default="1")
        )


def downgrade() -> None:
    with op.batch_alter_table("dataset_versions", schema=None) as batch_op:
        batch_op.drop_column("hash_version")
