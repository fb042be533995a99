"""Alembic's migrations, one file each, applied in the order their ``down_revision`` gives."""
