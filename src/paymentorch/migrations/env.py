"""Alembic environment for paymentorch's packaged revisions (own version table)."""

from __future__ import annotations

from alembic import context

from paymentorch.schema import VERSION_TABLE, metadata

config = context.config
connection = config.attributes.get("connection")

if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        literal_binds=True,
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    if connection is None:
        raise RuntimeError("run paymentorch's migrations through paymentorch.migrate")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()
