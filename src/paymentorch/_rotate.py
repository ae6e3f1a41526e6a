"""``paymentorch rotate-key``: re-seal stored values with the active key, online, in
batches; the same pass seals a database written before encryption was turned on."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import Any
from uuid import UUID

import attrs

from paymentorch.adapters import backend_of
from paymentorch.adapters._require import driver
from paymentorch.adapters.sqlite.connection import connect
from paymentorch.adapters.sqlite.statements import database_path
from paymentorch.crypto import INDEX_PREFIX, FieldEncryption
from paymentorch.domain import FieldError, ValidationError


@attrs.frozen
class Rotation:
    """What one pass re-sealed.

    Attributes:
        payments: Rows whose customer id and metadata were sealed again (or first).
        events: Outbox snapshots sealed again (delivered events are gone already).
        exposures: Clear-text exposure rows folded into their blind index's row.
        receivables: Receivable postings moved from a clear customer id to its blind
            index (an owner's representation; no amount changes).
    """

    payments: int
    events: int
    exposures: int
    receivables: int = 0


def rotate_key(url: str, encryption: FieldEncryption, *, batch_size: int = 200) -> Rotation:
    """Seal every stored customer id, metadata value and outbox snapshot with
    ``encryption.active``, while services keep writing.

    Each row is rewritten only if nobody rewrote it meanwhile; writers never touch
    these columns after a creation, so nothing they write is lost. ``encryption`` must
    hold every key still in use. On SQLite the file is vacuumed at the end, so no
    clear text stays behind in free pages.
    """
    backend = backend_of(url)
    if backend == "sqlite":
        return _rotate(_SQLite(database_path(url)), encryption, batch_size)
    if backend == "postgres":
        from paymentorch.adapters.postgres.statements import conninfo  # noqa: PLC0415 - psycopg

        return _rotate(_Postgres(conninfo(url)), encryption, batch_size)
    raise ValidationError(
        [FieldError("url", "only SQLite and PostgreSQL keep data at rest", "url")]
    )


def _rotate(db: _SQLite | _Postgres, encryption: FieldEncryption, batch_size: int) -> Rotation:
    try:
        payments = events = 0
        for pid, customer_id, metadata in db.batches("payments", batch_size):
            if encryption.is_current(metadata):
                continue
            clear_customer, clear = encryption.open(pid, customer_id, metadata)
            index, sealed = encryption.seal(pid, clear_customer, clear)
            payments += db.reseal_payment(pid, customer_id, index, sealed)
        for seq, _, payload in db.batches("outbox", batch_size):
            if encryption.is_current(payload.get("metadata") or {}):
                continue
            snapshot = encryption.seal_snapshot(encryption.open_snapshot(payload))
            events += db.reseal_event(seq, snapshot)  # written once, at the insert
        exposures = sum(
            db.fold_exposure(customer_id, currency, encryption.index(customer_id))
            for customer_id, currency in db.clear_exposures()
        )
        receivables = sum(
            db.seal_receivables(owner, encryption.index(owner)) for owner in db.clear_receivables()
        )
        db.finish()
        return Rotation(payments, events, exposures, receivables)
    finally:
        db.close()


class _SQLite:
    QUERIES: Mapping[str, str] = {
        "payments": "SELECT id, customer_id, metadata FROM paymentorch_payments"
        " WHERE id > ? ORDER BY id LIMIT ?",
        "outbox": "SELECT seq, event_id, payload FROM paymentorch_outbox"
        " WHERE seq > ? ORDER BY seq LIMIT ?",
    }

    def __init__(self, path: str) -> None:
        self.conn = connect(path, durability="normal", busy_timeout=30.0, create_schema=False)

    def batches(self, table: str, size: int) -> Iterator[tuple[Any, Any, dict[str, Any]]]:
        after: Any = "" if table == "payments" else 0
        while rows := self.conn.execute(self.QUERIES[table], (after, size)).fetchall():
            for key, second, document in rows:
                yield (UUID(hex=key) if table == "payments" else key), second, json.loads(document)
            after = rows[-1][0]

    def reseal_payment(self, pid: UUID, old: str, index: str, sealed: dict[str, str]) -> int:
        return self._write(
            "UPDATE paymentorch_payments SET customer_id = ?, metadata = ?"
            " WHERE id = ? AND customer_id = ?",
            (index, _dumps(sealed), pid.hex, old),
        )

    def reseal_event(self, seq: int, snapshot: dict[str, Any]) -> int:
        return self._write(
            "UPDATE paymentorch_outbox SET payload = ? WHERE seq = ?", (_dumps(snapshot), seq)
        )

    def clear_exposures(self) -> list[tuple[str, str]]:
        sql = "SELECT customer_id, currency FROM paymentorch_exposure WHERE customer_id NOT LIKE ?"
        return [(c, cur) for c, cur in self.conn.execute(sql, (INDEX_PREFIX + "%",))]

    def fold_exposure(self, customer_id: str, currency: str, index: str) -> int:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")  # the stores' writers take the same lock
        try:
            amounts = dict(
                conn.execute(
                    "SELECT customer_id, amount FROM paymentorch_exposure"
                    " WHERE customer_id IN (?, ?) AND currency = ?",
                    (customer_id, index, currency),
                ).fetchall()
            )
            if customer_id in amounts:
                total = sum((Decimal(a) for a in amounts.values()), Decimal(0))
                conn.execute(
                    "DELETE FROM paymentorch_exposure WHERE customer_id = ? AND currency = ?",
                    (customer_id, currency),
                )
                conn.execute(
                    "INSERT INTO paymentorch_exposure (customer_id, currency, amount)"
                    " VALUES (?, ?, ?) ON CONFLICT (customer_id, currency)"
                    " DO UPDATE SET amount = excluded.amount",
                    (index, currency, str(total)),
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return int(customer_id in amounts)

    def clear_receivables(self) -> list[str]:
        return [owner for (owner,) in self.conn.execute(_CLEAR_RECEIVABLES, (INDEX_PREFIX + "%",))]

    def seal_receivables(self, owner: str, index: str) -> int:
        return self._write(_SEAL_RECEIVABLES, (index, owner))

    def _write(self, sql: str, params: tuple[Any, ...]) -> int:
        return self.conn.execute(sql, params).rowcount

    def finish(self) -> None:
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.conn.execute("VACUUM")  # the clear text in free pages goes too
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        self.conn.close()


class _Postgres:
    QUERIES: Mapping[str, str] = {
        "payments": "SELECT id, customer_id, metadata FROM paymentorch_payments"
        " WHERE id > %s ORDER BY id LIMIT %s",
        "outbox": "SELECT seq, event_id, payload FROM paymentorch_outbox"
        " WHERE seq > %s ORDER BY seq LIMIT %s",
    }

    def __init__(self, url: str) -> None:
        psycopg = driver("psycopg", "postgres")
        self.jsonb: Callable[[Any], Any] = driver("psycopg.types.json", "postgres").Jsonb
        self.conn = psycopg.connect(url, autocommit=True)

    def batches(self, table: str, size: int) -> Iterator[tuple[Any, Any, dict[str, Any]]]:
        after: Any = UUID(int=0) if table == "payments" else 0
        while rows := self.conn.execute(self.QUERIES[table], (after, size)).fetchall():
            yield from rows
            after = rows[-1][0]

    def reseal_payment(self, pid: UUID, old: str, index: str, sealed: dict[str, str]) -> int:
        return self._write(
            "UPDATE paymentorch_payments SET customer_id = %s, metadata = %s"
            " WHERE id = %s AND customer_id = %s",
            (index, self.jsonb(sealed), pid, old),
        )

    def reseal_event(self, seq: int, snapshot: dict[str, Any]) -> int:
        return self._write(
            "UPDATE paymentorch_outbox SET payload = %s WHERE seq = %s", (self.jsonb(snapshot), seq)
        )

    def clear_exposures(self) -> list[tuple[str, str]]:
        sql = "SELECT customer_id, currency FROM paymentorch_exposure WHERE customer_id NOT LIKE %s"
        return [(c, cur) for c, cur in self.conn.execute(sql, (INDEX_PREFIX + "%",))]

    def fold_exposure(self, customer_id: str, currency: str, index: str) -> int:
        # One statement: the clear row leaves and its amount joins the index's row, so a
        # concurrent reservation on either row waits for it and is kept.
        return self._write(
            "WITH gone AS (DELETE FROM paymentorch_exposure"
            " WHERE customer_id = %s AND currency = %s RETURNING amount)"
            " INSERT INTO paymentorch_exposure AS e (customer_id, currency, amount)"
            " SELECT %s, %s, amount FROM gone"
            " ON CONFLICT (customer_id, currency)"
            " DO UPDATE SET amount = e.amount + EXCLUDED.amount",
            (customer_id, currency, index, currency),
        )

    def clear_receivables(self) -> list[str]:
        sql = _CLEAR_RECEIVABLES.replace("?", "%s")
        return [owner for (owner,) in self.conn.execute(sql, (INDEX_PREFIX + "%",))]

    def seal_receivables(self, owner: str, index: str) -> int:
        return self._write(_SEAL_RECEIVABLES.replace("?", "%s"), (index, owner))

    def _write(self, sql: str, params: tuple[Any, ...]) -> int:
        return int(self.conn.execute(sql, params).rowcount)

    def finish(self) -> None:
        pass  # pg_dump shows live rows only; VACUUM reclaims the dead ones in its time

    def close(self) -> None:
        self.conn.close()


# A receivable's owner is a customer: clear in a database written before encryption.
_CLEAR_RECEIVABLES = (
    "SELECT DISTINCT owner FROM paymentorch_postings"
    " WHERE account_kind = 'receivable' AND owner NOT LIKE ?"
)
_SEAL_RECEIVABLES = (
    "UPDATE paymentorch_postings SET owner = ? WHERE account_kind = 'receivable' AND owner = ?"
)


def _dumps(value: Mapping[str, Any]) -> str:
    return json.dumps(dict(value), separators=(",", ":"), ensure_ascii=False)
