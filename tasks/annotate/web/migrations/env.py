"""Alembic environment: migrate the database named by the config's ``sqlalchemy.url`` (set by
``tasks.annotate.web.db.upgrade``). Offline mode prints the SQL instead of running it."""

from alembic import context
from sqlalchemy import create_engine, pool

from tasks.annotate.web.db import Base

target_metadata = Base.metadata
url = context.config.get_main_option("sqlalchemy.url")

if context.is_offline_mode():
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        # render_as_batch: SQLite alters tables by copying them; later revisions stay portable.
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
