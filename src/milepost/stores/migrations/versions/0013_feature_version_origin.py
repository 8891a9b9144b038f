"""Where each feature view version was defined: file, line, function and git commit.

Revision ID: 0013
Revises: 0012

Recorded by ``features apply`` so that reading an older version whose transform is no
longer loaded can say which version of which file defined it. Versions applied before
this revision have none (NULL).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("feature_view_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("origin_json", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("feature_view_versions", schema=None) as batch_op:
        batch_op.drop_column("origin_json")
