"""Statements run behind the library's back, as a person with a SQL console would."""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any


def run_sql(url: str, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
    """Run ``?``-placeholder statements on either backend, values adapted to its types."""
    if url.startswith("sqlite"):
        from paymentorch.adapters.sqlite import statements as lite

        def lite_value(value: Any) -> Any:
            if isinstance(value, uuid.UUID):
                return value.hex
            if isinstance(value, datetime):
                return lite.time_text(value)
            return str(value) if isinstance(value, Decimal) else value

        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn, conn:
            for sql, params in statements:
                conn.execute(sql, tuple(lite_value(v) for v in params))
        return
    import psycopg

    with psycopg.connect(url) as conn:
        for sql, params in statements:
            conn.execute(sql.replace("?", "%s"), params)
