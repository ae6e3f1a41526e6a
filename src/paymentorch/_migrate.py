"""Apply paymentorch's packaged Alembic revisions (own version table) to a database."""

from __future__ import annotations

import asyncio
import io
from typing import TYPE_CHECKING, Any

from paymentorch.adapters._require import driver
from paymentorch.domain import FieldError, StoreError, StoreUnavailable, ValidationError

if TYPE_CHECKING:
    import sqlite3

    from alembic.config import Config


def sync_url(url: str) -> str:
    """The SQLAlchemy URL (with a synchronous driver) for a paymentorch URL."""
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise ValidationError([FieldError("url", "must be a URL", "url")])
    if scheme in {"postgresql", "postgres", "postgresql+psycopg"}:
        return f"postgresql+psycopg://{rest}"
    if scheme in {"sqlite", "sqlite+aiosqlite"}:
        return f"sqlite://{rest}"
    raise ValidationError(
        [FieldError("url", f"{scheme!r} has no schema to migrate (postgresql or sqlite)", "scheme")]
    )


def _extra(target: str) -> str:
    return "sqlite" if target.startswith("sqlite") else "postgres"


def _require(target: str, *, dbapi: bool = True) -> None:
    """Check the libraries a migration of ``target`` needs, naming the extra that has them.

    Printing the SQL (``dbapi=False``) connects to nothing, so it needs no driver.
    """
    extra = _extra(target)
    needed = ["sqlalchemy", "alembic"]
    if dbapi and extra == "postgres":
        needed.append("psycopg")
    for module in needed:
        driver(module, extra)


def _config() -> Config:
    from alembic.config import Config  # noqa: PLC0415 - after _require named the extra

    config = Config()
    config.set_main_option("script_location", "paymentorch:migrations")
    return config


def migrate_sync(url: str, *, revision: str = "head", sql: bool = False) -> str | None:
    """Upgrade the schema at ``url`` to ``revision``; with ``sql``, return the SQL instead.

    Concurrent callers are safe: they serialize on a database lock, and the later ones
    find the schema current.
    """
    target = sync_url(url)
    _require(target, dbapi=not sql)
    import sqlalchemy as sa  # noqa: PLC0415 - SQLAlchemy engines only when migrating
    from alembic import command  # noqa: PLC0415

    config = _config()
    if sql:
        buffer = io.StringIO()
        config.output_buffer = buffer
        config.set_main_option("sqlalchemy.url", target.replace("%", "%%"))
        command.upgrade(config, revision, sql=True)
        return buffer.getvalue()
    engine = _engine(sa, target)
    try:
        with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7306265821)")
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    except sa.exc.OperationalError as exc:
        raise StoreUnavailable(f"cannot migrate the database: {exc.orig}") from exc
    except sa.exc.SQLAlchemyError as exc:
        raise StoreError(f"the migration failed: {exc}") from exc
    finally:
        engine.dispose()
    return None


def migrate_connection(connection: sqlite3.Connection, *, revision: str = "head") -> None:
    """Upgrade the schema on an open ``sqlite3`` connection (a ``:memory:`` database)."""
    _require("sqlite://")
    import sqlalchemy as sa  # noqa: PLC0415 - SQLAlchemy engines only when migrating
    from alembic import command  # noqa: PLC0415

    engine = _engine(sa, "sqlite://", creator=lambda: connection)
    config = _config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
    # No engine.dispose(): that would close the connection, and with it the database.


def _engine(sa: Any, target: str, creator: Any = None) -> Any:
    if not target.startswith("sqlite"):
        return sa.create_engine(
            target, poolclass=sa.pool.NullPool, connect_args={"connect_timeout": 10}
        )
    if creator is None:
        engine = sa.create_engine(target, poolclass=sa.pool.NullPool, connect_args={"timeout": 30})
    else:
        engine = sa.create_engine(target, poolclass=sa.pool.StaticPool, creator=creator)

    # Let SQLite take the write lock up front, so concurrent migrations queue, not fail.
    def connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA journal_mode=WAL")

    def begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    sa.event.listen(engine, "connect", connect)
    sa.event.listen(engine, "begin", begin)
    return engine


async def migrate(url: str, *, revision: str = "head", sql: bool = False) -> str | None:
    """Upgrade the schema at ``url`` (PostgreSQL or SQLite) to the newest revision.

    With ``sql=True`` nothing runs: the SQL is returned for a DBA to apply.
    """
    return await asyncio.to_thread(migrate_sync, url, revision=revision, sql=sql)
