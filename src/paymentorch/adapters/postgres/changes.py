"""Writing a change on a PostgreSQL connection: the guarded statement, which carries its
plan and further events too, and what it cannot carry (an exposure a credit limit must
check), in the caller's transaction; and what bulk writes add to their statements."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import psycopg

from paymentorch.adapters.postgres.statements import (
    INSERT_EVENT,
    MOVE_EXPOSURE,
    MOVE_EXPOSURES,
    POST_ENTRIES,
    POST_LINES,
    READ_EXPOSURE,
    WRITE_PLAN,
    apply_sql,
    columns,
    event_row,
    inline_exposure,
    journal_values,
    numbered,
    numbered_params,
    plan_row,
    statement_params,
    update_row,
)
from paymentorch.domain import Change, CreditLimitExceeded, PaymentStatus
from paymentorch.domain.ledger import JournalEntry


async def apply_change(
    conn: psycopg.AsyncConnection[Any], change: Change, expected: PaymentStatus
) -> bool:
    """The guarded update with all its change writes (``has_extras`` aside); say if it
    matched."""
    params = statement_params(change, update_row(change, expected))
    sql = apply_sql(
        operation=change.operation is not None,
        exposure=inline_exposure(change),
        request=change.request is not None,
        journal=change.journal is not None,
        events=len(change.more_events),
        plan=change.plan is not None,
    )
    cur = await run_numbered(conn, sql, params)
    row = await cur.fetchone()
    matched = row is not None and row[0] == 1
    if matched and has_extras(change):
        await move_exposure(conn, change)
    return matched


async def run_numbered(
    conn: psycopg.AsyncConnection[Any], sql: str, params: Sequence[Any] | Mapping[str, Any]
) -> psycopg.AsyncRawCursor[Any]:
    """Execute one of the store's long statements (psycopg's placeholders), numbered once
    (``numbered``), on a raw cursor."""
    query, names = numbered(sql)
    cur = psycopg.AsyncRawCursor(conn)
    await cur.execute(query, numbered_params(names, params))
    return cur


def has_extras(change: Change) -> bool:
    """Whether the change writes more than its one statement does: an exposure that grows
    under a credit limit, moved after it in the caller's transaction."""
    return bool(change.exposure) and not inline_exposure(change)


async def write_extras(
    conn: psycopg.AsyncConnection[Any], change: Change, *, journal: bool = True,
    exposure: bool = True,
) -> None:  # fmt: skip
    """What a bulk write's statements leave out: the customer's exposure (unless the
    caller moves it: ``exposure=False``), the journal entry (unless the caller posts it:
    ``journal=False``), the payment's further events and its plan, in the caller's
    transaction."""
    if exposure and change.exposure:
        await move_exposure(conn, change)
    if change.journal is not None and journal:
        await post_entries(conn, [change.journal])
    for event in change.more_events:
        await conn.execute(INSERT_EVENT, event_row(event))
    if change.plan is not None:
        await conn.execute(WRITE_PLAN, plan_row(change.plan))


async def move_exposures(conn: psycopg.AsyncConnection[Any], changes: Sequence[Change]) -> bool:
    """Move the exposures of many changes in one statement, summed per customer and
    currency, when none has a credit limit to check (a bulk write's changes all move
    one way, so the sum clamps at zero as the moves one by one would); False, moving
    nothing, when one has: the caller moves them one by one."""
    if any(c.growth_limit is not None for c in changes if c.exposure):
        return False
    moves = [(c.payment.customer_id, c.payment.currency, c.exposure) for c in changes
             if c.exposure]  # fmt: skip
    if moves:
        await conn.execute(MOVE_EXPOSURES, columns(moves, 3))
    return True


async def post_entries(conn: psycopg.AsyncConnection[Any], entries: Sequence[JournalEntry]) -> None:
    """Insert journal entries and their lines: two statements, however many."""
    heads, lines = [], []
    for entry in entries:
        head, more = journal_values(entry)
        heads.append(head)
        lines += more
    await conn.execute(POST_ENTRIES, columns(heads, 6))
    await conn.execute(POST_LINES, columns(lines, 7))


async def move_exposure(conn: psycopg.AsyncConnection[Any], change: Change) -> None:
    """Move the customer's exposure by ``change.exposure`` in the caller's transaction;
    growing it past the guard's credit limit raises (the row lock orders concurrent ones)."""
    customer, currency = change.payment.customer_id, change.payment.currency
    limit = change.growth_limit
    moved = None
    if limit is None or change.exposure <= limit:
        cur = await conn.execute(
            MOVE_EXPOSURE,
            {"customer": customer, "currency": currency, "delta": change.exposure, "limit": limit},
        )
        moved = await cur.fetchone()
    if moved is None and limit is not None:
        raise await refused(conn, change)


async def refused(conn: psycopg.AsyncConnection[Any], change: Change) -> CreditLimitExceeded:
    """The error of ``change``, whose exposure its customer's credit limit did not let
    grow: with the exposure as it is now."""
    customer, currency = change.payment.customer_id, change.payment.currency
    limit = change.growth_limit
    cur = await conn.execute(READ_EXPOSURE, (customer, currency))
    found = await cur.fetchone()
    return CreditLimitExceeded(
        customer, Decimal(0) if limit is None else limit, found[0] if found else Decimal(0),
        change.exposure,
    )  # fmt: skip
