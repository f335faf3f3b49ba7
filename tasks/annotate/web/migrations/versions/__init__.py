"""Schema revisions, oldest first (``alembic revision`` writes new ones here)."""
