"""Alembic migrations of the labelling app's database; applied by ``tasks.annotate.web.db.upgrade``."""
