"""The PostgreSQL store: psycopg 3 with psycopg_pool, one round trip per change.

Its pool, and how each call runs on it, are ``PostgresPool``'s (``pool``); connections,
limits and the translation of driver errors (the one seam) live in ``connection``: a
lost or refused connection is ``StoreUnavailable``. A write runs again only when the
server says it never ran; one whose commit outcome is unknown is never run twice.
Reads are retried with back-off. The blocking twin's store is generated from this
module, with psycopg's synchronous pool.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg
import psycopg_pool
from psycopg import errors as pg_errors
from psycopg.types.json import Jsonb

from paymentorch.adapters._kept import KeptAsWritten
from paymentorch.adapters._sql import (
    AUDIT_COLUMNS,
    AUDIT_INSERT_COLUMNS,
    OPERATION_COLUMNS,
    OPERATION_KEY_INDEX,
    OUTBOX_COLUMNS,
    PAYMENT_INSERT_COLUMNS,
    REQUEST_KEY,
    REQUEST_READ,
    STATUS,
    audit_from_row,
    exposure_sql,
    installments_due_sql,
    key_scope,
    plain,
    plans_by_age_sql,
    plans_due_sql,
    plans_to_remind_sql,
    request_from_row,
)
from paymentorch.adapters.postgres.changes import (
    apply_change,
    has_extras,
    move_exposure,
    move_exposures,
    post_entries,
    refused,
    run_numbered,
    write_extras,
)
from paymentorch.adapters.postgres.connection import CONNECTION_OPTIONS, POOL_OPTIONS, Settings
from paymentorch.adapters.postgres.ledger import PostgresLedger
from paymentorch.adapters.postgres.statements import (
    APPLY_MANY,
    CLAIM_OPERATIONS,
    KEY_INDEX,
    PAYMENT_WIDTH,
    READ_EXPOSURE,
    READ_PLAN,
    READ_WITH_PLAN,
    SELECT,
    SETTLE,
    audit_row,
    conninfo,
    create_sql,
    event_row,
    guarded_params,
    inline_exposure,
    list_query,
    payment_row,
    plan_of,
    row_operation,
    row_payment,
    same,
    settle_row,
    statement_params,
    where_filters,
)
from paymentorch.adapters.postgres.transition import stepped, transition_params
from paymentorch.domain import (
    AuditEntry,
    Change,
    FieldError,
    IdempotencyConflict,
    Operation,
    OperationStatus,
    Payment,
    PaymentStatus,
    StoreError,
    ValidationError,
)
from paymentorch.domain.credit import exposure_changes
from paymentorch.domain.orchestration import IN_DOUBT_ERROR
from paymentorch.domain.plans import Plan
from paymentorch.domain.records import check_bulk
from paymentorch.domain.requests import KeyedChange
from paymentorch.domain.results import SummaryRow
from paymentorch.domain.transitions import Stepped, Transition
from paymentorch.ports import Keyset

KNOWN_PLANS = 10_000
"""How many payments it created with a plan a store keeps the ids of (``transition``)."""
FRESH_PLANS = 1_000
"""How many of those a store keeps as it wrote them, payment and plan, until their first
transition (``transition``): a checkout's confirmation then reads nothing first."""


class PostgresPaymentStore(PostgresLedger):
    """Payments in PostgreSQL, shared safely by any number of processes.

    ``settings`` (see ``open_store``) bound each call; a store built around a host's
    ``pool`` leaves it open when the store closes (``owns_pool=False``).
    """

    backend = "postgresql"

    def __init__(
        self,
        pool: psycopg_pool.AsyncConnectionPool[Any],
        settings: Settings | None = None,
        *,
        owns_pool: bool = True,
    ) -> None:
        super().__init__(pool, settings, owns_pool=owns_pool)
        # Payments this store created with a plan, newest last (a plan is never taken
        # off its payment, so an id here is never stale).
        self._planned: OrderedDict[UUID, None] = OrderedDict()
        # The newest of them as written, until their first transition decides on them.
        self._fresh: KeptAsWritten[Plan] = KeptAsWritten(FRESH_PLANS)

    # -- writes -----------------------------------------------------------------

    async def add(self, change: Change) -> Payment | None:
        """Insert payment, entry and event, with its plan and its exposure move (under its
        credit limit, if any), in one statement; or return the key's holder."""
        guarded = has_extras(change)  # an exposure that grows under a credit limit
        params = statement_params(change, payment_row(change))
        sql = create_sql(
            operation=change.operation is not None,
            exposure=inline_exposure(change),
            events=len(change.more_events),
            plan=change.plan is not None,
            guarded=guarded,
        )
        limit = change.growth_limit
        if guarded:
            params = (*guarded_params(change), *params)

        async def work(conn: psycopg.AsyncConnection[Any]) -> Payment | None:
            if limit is None or change.exposure <= limit:  # else refused, or the key's holder
                try:
                    cur = await run_numbered(conn, sql, params)
                    row = await cur.fetchone()
                    if row is not None and row[0] == 1:
                        return None
                except pg_errors.UniqueViolation as exc:  # guarded: the key is held
                    if not guarded or exc.diag.constraint_name != KEY_INDEX:
                        raise
            key = change.payment.idempotency_key
            existing = None
            if key is not None or not guarded:
                holder = await conn.execute(
                    SELECT + " WHERE idempotency_scope = %s AND idempotency_key = %s",
                    (key_scope(change), key),
                )
                existing = await holder.fetchone()
            if existing is not None:
                return row_payment(existing)
            if guarded:  # the limit did not let the exposure grow: nothing was written
                raise await refused(conn, change)
            raise StoreError("the insert conflicted, but no payment holds its key")

        holder = await self._write("create a payment", work)
        if holder is None:
            self._remember(change)
        return holder

    def _remember(self, change: Change) -> None:
        """Keep a payment this store created with a plan (``transition``)."""
        if change.plan is None:
            return
        self._planned[change.payment.id] = None
        if len(self._planned) > KNOWN_PLANS:  # atomic, for the blocking twin's threads
            self._planned.popitem(last=False)
        self._fresh.keep(change.payment, change.plan)

    async def add_many(self, changes: Sequence[Change]) -> None:
        """Insert all with ``COPY``, in one transaction."""

        # An exposure a credit limit checks moves before the payments claim their keys,
        # customers in order, as a single creation's one statement moves it: one lock
        # order for both, so a batch and a creation holding one key cannot deadlock.
        limited = sorted(filter(has_extras, changes), key=_exposure_row)
        rest = [c for c in changes if not has_extras(c)]

        async def work(conn: psycopg.AsyncConnection[Any]) -> None:
            async with conn.transaction(), conn.cursor() as cur:
                for c in limited:
                    await move_exposure(conn, c)
                async with cur.copy(
                    f"COPY paymentorch_payments ({PAYMENT_INSERT_COLUMNS}) FROM STDIN"
                ) as copy:
                    for c in changes:
                        await copy.write_row(payment_row(c))
                async with cur.copy(
                    f"COPY paymentorch_audit_entries ({AUDIT_INSERT_COLUMNS}) FROM STDIN"
                ) as copy:
                    for c in changes:
                        await copy.write_row((*audit_row(c.audit), c.event.id))
                async with cur.copy(
                    f"COPY paymentorch_outbox ({OUTBOX_COLUMNS}) FROM STDIN"
                ) as copy:
                    for c in changes:
                        await copy.write_row(event_row(c.event))
                await move_exposures(conn, rest)  # none has a limit: one statement
                for c in changes:
                    await write_extras(conn, c, exposure=False)

        try:
            await self._write("create payments", work)
        except StoreError as exc:
            cause = exc.__cause__
            if (
                isinstance(cause, pg_errors.UniqueViolation)
                and cause.diag.constraint_name == KEY_INDEX
            ):
                key = await self._held_key(changes)
                raise IdempotencyConflict(key, "already used by another payment") from cause
            raise
        for change in changes:
            self._remember(change)

    async def _held_key(self, changes: Sequence[Change]) -> str:
        """One of the batch's keys that its creator already holds."""
        keyed = [c for c in changes if c.payment.idempotency_key is not None]
        rows = await self._fetch(
            "find a held key",
            "SELECT k.key FROM unnest(%s::text[], %s::text[]) AS k(scope, key)"
            " JOIN paymentorch_payments p"
            " ON p.idempotency_scope = k.scope AND p.idempotency_key = k.key LIMIT 1",
            ([key_scope(c) for c in keyed], [c.payment.idempotency_key for c in keyed]),
        )
        return str(rows[0][0]) if rows else "?"

    async def apply(self, change: Change, *, expected: PaymentStatus) -> bool:
        """The guarded update with its entry, event and operation: one statement.

        Guarded by status, by version, and for a refund by the room left under what was
        captured, all in the ``WHERE`` of the one update.
        """

        async def work(conn: psycopg.AsyncConnection[Any]) -> bool:
            if not has_extras(change):
                return await apply_change(conn, change, expected)
            async with conn.transaction():  # the payment, its plan, its customer's exposure
                return await apply_change(conn, change, expected)

        try:
            return await self._write("change a payment", work)
        except StoreError as exc:
            cause, op = exc.__cause__, change.operation
            if (
                op is not None
                and op.idempotency_key is not None
                and isinstance(cause, pg_errors.UniqueViolation)
                and cause.diag.constraint_name == OPERATION_KEY_INDEX
            ):
                raise IdempotencyConflict(op.idempotency_key, "already used") from cause
            if (
                change.request is not None
                and isinstance(cause, pg_errors.UniqueViolation)
                and cause.diag.constraint_name == REQUEST_KEY
            ):
                raise IdempotencyConflict(change.request.key, "already used") from cause
            raise

    async def transition(self, move: Transition) -> Stepped:
        """Decide ``move`` on the row and write its change, or return the row as found:
        one statement (``transition_sql``), no read before it. A payment this store
        created with a plan, which the statement would only find, is found as the store
        wrote it the first time (the change decided on it is guarded by its version, so
        one made meanwhile elsewhere makes the service read), and read with its plan
        after that (``_with_plan``)."""
        if (fresh := self._fresh.take(move.payment_id, move.at)) is not None:
            return Stepped(found=fresh[0], plan=fresh[1])
        if move.payment_id in self._planned:
            return await self._with_plan(move.payment_id)
        sql, params = transition_params(move)

        async def work(conn: psycopg.AsyncConnection[Any]) -> Stepped:
            cur = await run_numbered(conn, sql, params)
            return stepped(move, await cur.fetchone())

        try:
            return await self._write("change a payment", work)
        except StoreError as exc:
            cause = exc.__cause__
            if (
                move.key is not None
                and isinstance(cause, pg_errors.UniqueViolation)
                and cause.diag.constraint_name == REQUEST_KEY
            ):
                raise IdempotencyConflict(move.key, "already used") from cause
            raise

    async def apply_many(self, changes: Sequence[Change], *, expected: PaymentStatus) -> set[UUID]:
        """Guarded updates for many payments in one statement."""
        check_bulk(changes)
        if not changes:
            return set()
        columns: list[list[Any]] = [[] for _ in range(13)]
        for change in changes:
            p, a, e = change.payment, change.audit, change.event
            values = (
                p.id,
                p.status.value,
                p.version,
                p.updated_at,
                p.failure_reason,
                a.action,
                a.actor_id,
                a.reason,
                a.correlation_id,
                e.id,
                e.type,
                Jsonb(plain(e.payment)),
                p.captured_amount,
            )
            for column, value in zip(columns, values, strict=True):
                column.append(value)

        moves = [c for c in changes if c.exposure or c.plan is not None or c.more_events]

        async def work(conn: psycopg.AsyncConnection[Any]) -> set[UUID]:
            async with conn.transaction():
                cur = await conn.execute(APPLY_MANY, (*columns, expected.value, expected.value))
                applied = {row[0] for row in await cur.fetchall()}
                done = [c for c in moves if c.payment.id in applied]
                batched = await move_exposures(conn, done)
                for change in done:
                    await write_extras(conn, change, journal=False, exposure=not batched)
                entries = [c.journal for c in changes if c.journal and c.payment.id in applied]
                if entries:
                    await post_entries(conn, entries)
                return applied

        return await self._write("change payments", work)

    async def purge_idempotency_keys(self, created_before: datetime) -> int:
        """Release keys of payments created before ``created_before``."""
        self._fresh.forget()

        async def work(conn: psycopg.AsyncConnection[Any]) -> int:
            cur = await conn.execute(
                "UPDATE paymentorch_payments SET idempotency_key = NULL, idempotency_scope = NULL"
                " WHERE idempotency_key IS NOT NULL AND created_at < %s",
                (created_before,),
            )
            released = cur.rowcount
            cur = await conn.execute(
                "DELETE FROM paymentorch_request_keys WHERE created_at < %s", (created_before,)
            )
            return released + cur.rowcount

        return await self._write("purge idempotency keys", work)

    # -- reads ------------------------------------------------------------------

    async def get(self, payment_id: UUID) -> Payment | None:
        """The payment, or None."""
        rows = await self._fetch("read a payment", SELECT + " WHERE id = %s", (payment_id,))
        return row_payment(rows[0]) if rows else None

    async def get_many(self, payment_ids: Sequence[UUID]) -> dict[UUID, Payment]:
        """The payments that exist among ``payment_ids``."""
        rows = await self._fetch(
            "read payments", SELECT + " WHERE id = ANY(%s)", (list(payment_ids),)
        )
        return {row[0]: row_payment(row) for row in rows}

    async def list_payments(
        self,
        *,
        status: PaymentStatus | None,
        customer_id: str | None,
        limit: int,
        after: Keyset | None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
    ) -> list[Payment]:
        """Newest first, strictly after ``after``, walking the matching index."""
        sql, params = list_query(status, customer_id, limit, after, created_from, created_to)
        return [row_payment(r) for r in await self._fetch("list payments", sql, params)]

    async def count(
        self,
        *,
        status: PaymentStatus | None,
        customer_id: str | None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
    ) -> int:
        """How many payments match."""
        where, params = where_filters(status, customer_id, created_from, created_to)
        rows = await self._fetch(
            "count payments", "SELECT count(*) FROM paymentorch_payments" + where, params
        )
        return int(rows[0][0])

    async def summarize(
        self,
        *,
        customer_id: str | None,
        created_from: datetime | None,
        created_to: datetime | None,
    ) -> list[SummaryRow]:
        """Grouped by day created (UTC), status and currency; amounts summed as NUMERIC."""
        where, params = where_filters(None, customer_id, created_from, created_to)
        rows = await self._fetch(
            "summarize payments",
            "SELECT (created_at AT TIME ZONE 'UTC')::date, status, currency, count(*),"
            " sum(amount) FROM paymentorch_payments" + where + " GROUP BY 1, 2, 3",
            params,
        )
        return [
            SummaryRow(day, STATUS[status], currency, count, total)
            for day, status, currency, count, total in rows
        ]

    async def operations(self, payment_id: UUID) -> list[Operation]:
        """A payment's operations, oldest first."""
        rows = await self._fetch(
            "read operations",
            f"SELECT {OPERATION_COLUMNS} FROM paymentorch_operations"
            " WHERE payment_id = %s ORDER BY created_at, id",
            (payment_id,),
        )
        return [row_operation(r) for r in rows]

    async def find_operation(self, payment_id: UUID, *, scope: str, key: str) -> Operation | None:
        """The operation of ``payment_id`` that ``scope`` asked for with ``key``."""
        rows = await self._fetch(
            "find an operation",
            f"SELECT {OPERATION_COLUMNS} FROM paymentorch_operations WHERE payment_id = %s"
            " AND idempotency_scope = %s AND idempotency_key = %s",
            (payment_id, scope, key),
        )
        return row_operation(rows[0]) if rows else None

    async def find_request(self, scope: str, key: str) -> KeyedChange | None:
        """The transition the actor ``scope`` made with ``key``, or None."""
        rows = await self._fetch("find a request", REQUEST_READ.format("%s"), (scope, key))
        return request_from_row(rows[0]) if rows else None

    async def get_operation(self, operation_id: UUID) -> Operation | None:
        """The operation, or None."""
        rows = await self._fetch(
            "read an operation",
            f"SELECT {OPERATION_COLUMNS} FROM paymentorch_operations WHERE id = %s",
            (operation_id,),
        )
        return row_operation(rows[0]) if rows else None

    async def claim_operations(
        self, limit: int, *, now: datetime, lease_until: datetime
    ) -> list[Operation]:
        """Lease due operations with ``FOR UPDATE SKIP LOCKED``, soonest first."""

        async def work(conn: psycopg.AsyncConnection[Any]) -> list[tuple[Any, ...]]:
            cur = await conn.execute(
                CLAIM_OPERATIONS,
                {"now": now, "limit": limit, "lease": lease_until, "in_doubt": IN_DOUBT_ERROR},
            )
            return await cur.fetchall()

        found = [row_operation(r) for r in await self._write("claim operations", work)]
        return sorted(found, key=lambda op: (op.due_at or now, op.id))

    async def settle(
        self, previous: Operation, operation: Operation, change: Change | None = None
    ) -> bool:
        """The operation's new state and its payment's change, in one transaction."""

        async def work(conn: psycopg.AsyncConnection[Any]) -> bool:
            settled = False
            async with conn.transaction() as tx:
                cur = await conn.execute(SETTLE, settle_row(previous, operation))
                settled = cur.rowcount == 1
                if settled and change is not None:
                    expected = change.audit.from_status
                    settled = expected is not None and await apply_change(conn, change, expected)
                    if not settled:  # the payment's guard refused: undo the operation too
                        raise psycopg.Rollback(tx)
            return settled

        return await self._write("settle an operation", work)

    async def _with_plan(self, payment_id: UUID) -> Stepped:
        """The payment with its plan as the one step finds them, in one query; nothing
        found (``Stepped()``) when the payment is missing."""
        found = await self.get_with_plan(payment_id)
        return Stepped() if found is None else Stepped(found=found[0], plan=found[1])

    async def plan(self, payment_id: UUID) -> Plan | None:
        """The payment's installment plan, or None."""

        async def work(conn: psycopg.AsyncConnection[Any]) -> Plan | None:
            cur = await conn.execute(READ_PLAN, (payment_id,))
            row = await cur.fetchone()
            return None if row is None else plan_of(payment_id, row)

        return await self._read("read a plan", work)

    async def get_with_plan(self, payment_id: UUID) -> tuple[Payment, Plan | None] | None:
        """The payment and its plan, as of one moment (one statement), or None."""
        rows = await self._fetch("read a payment and its plan", READ_WITH_PLAN, (payment_id,))
        if not rows:
            return None
        row, width = rows[0], PAYMENT_WIDTH
        payment = row_payment(row[:width])
        plan = plan_of(payment_id, row[width:]) if row[width] is not None else None
        return payment, plan

    async def plans_due(self, late_before: datetime, repeat_before: datetime) -> list[UUID]:
        """Payments whose plan has an installment late, or perhaps owing a repeat fee."""
        rows = await self._fetch(
            "find plans due", plans_due_sql("%s"), (late_before, repeat_before)
        )
        return [r[0] for r in rows]

    async def plans_by_age(
        self, *, after: Keyset | None, limit: int
    ) -> list[tuple[UUID, datetime]]:
        """Running plans by oldest unpaid due date, then payment id, past ``after``."""
        sql = plans_by_age_sql("%s", after=after is not None)
        rows = await self._fetch("list plans by age", sql, (*(after or ()), limit))
        return [(r[0], r[1]) for r in rows]

    async def installments_due(self, now: datetime, limit: int) -> list[tuple[UUID, int]]:
        """Unpaid installments to collect now: never tried, or a retry due."""
        sql = installments_due_sql("%s")
        rows = await self._fetch("find installments due", sql, (now, now, limit))
        return [(r[0], r[1]) for r in rows]

    async def plans_to_remind(
        self, now: datetime, until: datetime, smallest: timedelta
    ) -> list[UUID]:
        """Plans with an installment a reminder may be due for."""
        params = (now, until, int(smallest.total_seconds()))
        rows = await self._fetch("find plans to remind", plans_to_remind_sql("%s"), params)
        return [r[0] for r in rows]

    async def rebuild_exposure(self) -> int:
        """Recount every customer's exposure from payments and plans, in one transaction;
        return how many (customer, currency) figures were wrong."""

        async def work(conn: psycopg.AsyncConnection[Any]) -> int:
            async with conn.transaction():
                # Every row a change could move is locked while it is recounted.
                await conn.execute("LOCK TABLE paymentorch_exposure IN EXCLUSIVE MODE")
                cur = await conn.execute(
                    "SELECT customer_id, currency, amount FROM paymentorch_exposure"
                )
                stored = {(c, k): a for c, k, a in await cur.fetchall()}
                cur = await conn.execute(exposure_sql(lambda column: f"sum({column})"))
                wanted = {(c, k): a for c, k, a in await cur.fetchall()}
                changes = exposure_changes(stored, wanted)
                if changes:
                    await conn.execute(
                        "INSERT INTO paymentorch_exposure (customer_id, currency, amount)"
                        " SELECT * FROM unnest(%s::text[], %s::text[], %s::numeric[])"
                        " ON CONFLICT (customer_id, currency)"
                        " DO UPDATE SET amount = EXCLUDED.amount",
                        tuple(list(c) for c in zip(*((c, k, v) for (c, k), v in changes.items()),
                                                    strict=True)),
                    )  # fmt: skip
                return len(changes)

        return await self._write("rebuild exposure", work)

    async def exposure(self, customer_id: str, currency: str) -> Decimal:
        """The customer's exposure in ``currency``."""
        rows = await self._fetch("read an exposure", READ_EXPOSURE, (customer_id, currency))
        return Decimal(rows[0][0]) if rows else Decimal(0)

    async def operations_with_status(
        self, status: OperationStatus, *, limit: int
    ) -> list[Operation]:
        """Operations with ``status``, oldest first."""
        rows = await self._fetch(
            "read operations",
            f"SELECT {OPERATION_COLUMNS} FROM paymentorch_operations WHERE status = %s"
            " ORDER BY created_at, id LIMIT %s",
            (status.value, limit),
        )
        return [row_operation(r) for r in rows]

    async def find_operation_by_reference(self, processor: str, reference: str) -> Operation | None:
        """The operation a processor knows by ``reference``, or None."""
        rows = await self._fetch(
            "find an operation",
            f"SELECT {OPERATION_COLUMNS} FROM paymentorch_operations"
            " WHERE processor = %s AND reference = %s",
            (processor, reference),
        )
        return row_operation(rows[0]) if rows else None

    async def record_callback(
        self,
        processor: str,
        event_id: str,
        *,
        operation_id: UUID | None,
        outcome: str,
        received_at: datetime,
    ) -> bool:
        """Keep the event id in the inbox; False when it was there already."""

        async def work(conn: psycopg.AsyncConnection[Any]) -> bool:
            cur = await conn.execute(
                "INSERT INTO paymentorch_inbox"
                " (processor, event_id, operation_id, outcome, received_at)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (processor, event_id, operation_id, outcome, received_at),
            )
            return cur.rowcount == 1

        return await self._write("record a callback", work)

    async def audit_trail(self, payment_id: UUID) -> list[AuditEntry]:
        """Entries for one payment, oldest first."""
        rows = await self._fetch(
            "read the audit trail",
            f"SELECT {AUDIT_COLUMNS} FROM paymentorch_audit_entries"
            " WHERE payment_id = %s ORDER BY seq",
            (payment_id,),
        )
        return [audit_from_row(r, uuid=same, time=same) for r in rows]


def _exposure_row(change: Change) -> tuple[str, str]:
    return change.payment.customer_id, change.payment.currency


async def open_store(
    url: str,
    *,
    pool: psycopg_pool.AsyncConnectionPool[Any] | None = None,
    create_schema: bool = False,
    **options: Any,
) -> PostgresPaymentStore:
    """Open the PostgreSQL store that ``url`` names.

    ``options``: ``pool_size=10``, ``min_pool_size=None`` (``pool_size``),
    ``connect_timeout=5``, ``pool_timeout=None`` (``connect_timeout``), ``max_waiting=0``
    (unbounded), ``max_idle=600``, ``max_lifetime=3600``, ``reconnect_timeout=10``,
    ``statement_timeout=None``, ``lock_timeout=None``, ``application_name="paymentorch"``
    and ``deadline=None`` (a bound on each call, retries included); times in seconds or
    as ``timedelta``. ``pool``: a host's own open pool, used instead of making one (then
    only ``deadline`` applies; the host keeps and closes its pool).

    Raises:
        ValidationError: an option out of range, or pool options beside ``pool``.
        StoreUnavailable: the server refused or did not answer within ``connect_timeout``.
    """
    if pool is None:
        return await PostgresPaymentStore.open(
            conninfo(url), create_schema=create_schema, **options
        )
    if clash := sorted(set(options) & (POOL_OPTIONS | CONNECTION_OPTIONS)):
        raise ValidationError(
            [FieldError(name, "is the pool's own: set it on the pool given", "pool")
             for name in clash]
        )  # fmt: skip
    if create_schema:
        from paymentorch._migrate import migrate  # noqa: PLC0415 - Alembic only when asked

        await migrate(conninfo(url))
    return await PostgresPaymentStore.around(pool, **options)
