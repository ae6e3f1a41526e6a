"""PostgreSQL specifics: index use, unreachable servers, missing schema, error translation."""

from __future__ import annotations

import contextlib
import socket
import sys
import time
from decimal import Decimal
from functools import partial
from typing import Any

import pytest

import paymentorch as po
from paymentorch.adapters._require import MissingDriver
from paymentorch.domain.transitions import Stepped
from paymentorch.testing import Backend

pytestmark = pytest.mark.postgres
ADMIN = po.Actor.system()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_listing_walks_an_index(postgres_backend: Backend) -> None:
    """The keyset query is served by an index scan, never a sort of the whole table."""
    import psycopg

    from paymentorch.adapters.postgres.statements import list_query

    assert postgres_backend.url is not None
    async with await po.open_service(postgres_backend.url) as service:
        await service.create_payments(
            [po.NewPayment(f"ABCD-{i % 5:05d}", "1.00") for i in range(5000)], actor=ADMIN
        )
        page = await service.list_payments(limit=50)
        last = page.items[-1]
    with psycopg.connect(postgres_backend.url) as conn:
        conn.execute("ANALYZE paymentorch_payments")
        for status, customer in [
            (None, None),
            (po.PaymentStatus.PENDING, None),
            (None, "ABCD-00003"),
        ]:
            sql, params = list_query(status, customer, 51, (last.created_at, last.id))
            plan = "\n".join(
                row[0]
                for row in conn.execute("EXPLAIN " + sql, params).fetchall()  # type: ignore[call-overload]
            )
            assert "Index" in plan, plan
            assert "Sort" not in plan, plan


async def test_unreachable_server_fails_fast() -> None:
    """Opening a store on a closed port raises StoreUnavailable within seconds."""
    started = time.monotonic()
    with pytest.raises(po.StoreUnavailable) as caught:
        await po.open_service(
            f"postgresql://postgres@127.0.0.1:{_closed_port()}/test", connect_timeout=2
        )
    assert time.monotonic() - started < 10
    assert caught.value.__cause__ is not None
    assert "psycopg" not in type(caught.value).__module__


async def test_health_is_down_when_the_server_goes_away(postgres_backend: Backend) -> None:
    """A store whose server is unreachable reports down, without raising."""
    store = await postgres_backend.open_store()
    service = po.PaymentService(store)
    assert (await service.health()).status == "ok"
    await store.aclose()
    report = await service.health()
    assert report.status == "down"
    assert report.checks["store"]["status"] == "down"


async def test_missing_schema_names_the_fix(empty_postgres_url: str) -> None:
    """A database without the tables says to run the migration."""
    with pytest.raises(po.StoreError, match="migrate"):
        await po.open_service(empty_postgres_url)
    async with await po.open_service(empty_postgres_url, create_schema=True) as service:
        assert (await service.health()).status == "ok"


async def test_amounts_are_numeric(postgres_backend: Backend) -> None:
    """Amounts are stored as NUMERIC, exactly."""
    import psycopg

    assert postgres_backend.url is not None
    async with await po.open_service(postgres_backend.url) as service:
        payment = await service.create_payment("ABCD-12345", "1.234", actor=ADMIN, currency="KWD")
    with psycopg.connect(postgres_backend.url) as conn:
        row = conn.execute(
            "SELECT amount, pg_typeof(amount)::text FROM paymentorch_payments WHERE id = %s",
            (payment.id,),
        ).fetchone()
    assert row == (Decimal("1.234"), "numeric")


def test_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without psycopg installed, the error says which extra to install."""
    monkeypatch.setitem(sys.modules, "psycopg", None)
    monkeypatch.delitem(sys.modules, "paymentorch.adapters.postgres", raising=False)
    with pytest.raises(MissingDriver, match=r"paymentorch\[postgres\]"):
        import paymentorch.adapters.postgres  # noqa: F401


async def test_health_is_down_on_a_closed_port() -> None:
    """health() reports down, with the error, when nothing listens on the store's port."""
    import psycopg_pool

    from paymentorch.adapters.postgres import PostgresPaymentStore

    pool: psycopg_pool.AsyncConnectionPool = psycopg_pool.AsyncConnectionPool(
        f"postgresql://postgres@127.0.0.1:{_closed_port()}/test",
        min_size=1,
        timeout=1,
        open=False,
        kwargs={"connect_timeout": 1},
    )
    await pool.open(wait=False)
    service = po.PaymentService(PostgresPaymentStore(pool))
    try:
        report = await service.health()
    finally:
        await service.aclose()
    assert report.status == "down"
    assert "unavailable" in report.checks["store"]["error"]


async def test_a_misspelled_database_fails_at_once_with_the_reason(
    postgres_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A database that does not exist is named at once, not after the whole connect timeout."""
    url = postgres_database.rpartition("/")[0] + "/paymentorch_no_such_database"
    started = time.monotonic()
    with pytest.raises(po.StoreUnavailable, match="does not exist") as caught:
        await po.open_service(url, connect_timeout=60)
    assert time.monotonic() - started < 30  # the pool would have retried for 60 s
    assert "paymentorch_no_such_database" in str(caught.value)
    assert not [r for r in caplog.records if r.name.startswith("psycopg")]


class _Pipeline:
    """The store, deciding no transition itself: the service reads and decides."""

    def __init__(self, store: Any) -> None:
        self.inner = store
        self.backend = store.backend

    async def transition(self, move: Any) -> Stepped:
        return Stepped()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


_ROWS = (
    "SELECT {} FROM paymentorch_payments WHERE id = %(id)s",
    "SELECT action, from_status, to_status, actor_id, at, reason, correlation_id"
    " FROM paymentorch_audit_entries WHERE payment_id = %(id)s ORDER BY seq",
    "SELECT type, occurred_at, payload::text, actor_id, correlation_id, operation::text"
    " FROM paymentorch_outbox WHERE payment_id = %(id)s ORDER BY seq",
    "SELECT kind, at, correlation_id, operation_id FROM paymentorch_journal_entries"
    " WHERE payment_id = %(id)s ORDER BY at",
    "SELECT line, account_kind, owner, currency, amount::text FROM paymentorch_postings"
    " WHERE payment_id = %(id)s ORDER BY entry_id, line",
)


@pytest.mark.parametrize(
    ("action", "authorized", "amount", "currency", "microsecond"),
    [
        ("confirm", False, "125.50", "USD", 123456),
        ("confirm", False, "1000", "JPY", 0),
        ("authorize", False, "12.345", "BHD", 500),
        ("fail", False, "10.00", "EUR", 0),
        ("fail", True, "7", "JPY", 1),
        ("cancel", True, "1.0000", "CLF", 999999),
    ],
)
async def test_one_statement_writes_the_rows_the_pipeline_writes(
    postgres_backend: Backend,
    action: str,
    authorized: bool,
    amount: str,
    currency: str,
    microsecond: int,
) -> None:
    """A transition in one statement leaves the same rows, byte for byte (the outbox
    payload's text included), as the read-decide-write pipeline: only the ids differ."""
    import psycopg

    from paymentorch.adapters._sql import PAYMENT_COLUMNS
    from paymentorch.clock import utc_now
    from paymentorch.domain import PaymentStatus

    now = utc_now().replace(microsecond=microsecond)
    store = await postgres_backend.open_store()
    one = po.PaymentService(store, cache=None, clock=lambda: now)
    two = po.PaymentService(_Pipeline(store), cache=None, clock=lambda: now)  # type: ignore[arg-type]
    ids = []
    try:
        for service in (one, two):
            payment = await service.create_payment(
                "ABCD-12345", amount, currency=currency, actor=ADMIN,
                metadata={"order": "A-1", "note": "caf\u00e9"},
            )  # fmt: skip
            if authorized:
                await service.authorize_payment(payment.id, actor=ADMIN)
            with po.correlation("req-1"):
                done = await getattr(service, f"{action}_payment")(
                    payment.id, actor=ADMIN, **({"reason": "no"} if action == "fail" else {})
                )
            assert done.status is not PaymentStatus.PENDING
            ids.append(payment.id)
    finally:
        await store.aclose()
    assert postgres_backend.url is not None
    found = []
    with psycopg.connect(postgres_backend.url) as conn:
        for pid in ids:
            rows = [
                conn.execute(sql.format(PAYMENT_COLUMNS), {"id": pid}).fetchall()  # type: ignore[call-overload]
                for sql in _ROWS
            ]
            found.append(repr(rows).replace(str(pid), "<id>"))
    assert found[0] == found[1]


class _Apart(_Pipeline):
    """The store as it wrote a plan before one statement carried it: the service reads
    the payment and its plan itself, and a change's exposure move under a credit limit,
    further events and plan are written after its statement, each in a statement of its
    own, in one transaction."""

    async def add(self, change: Any) -> None:
        import attrs

        from paymentorch.adapters.postgres.changes import has_extras, write_extras
        from paymentorch.adapters.postgres.statements import (
            create_sql,
            inline_exposure,
            payment_row,
            statement_params,
        )

        bare = attrs.evolve(change, plan=None, more_events=())
        sql = create_sql(operation=bare.operation is not None, exposure=inline_exposure(bare))
        params = statement_params(bare, payment_row(bare))

        async def work(conn: Any) -> None:
            async with conn.transaction():
                cur = await conn.execute(sql, params)
                assert (await cur.fetchone())[0] == 1
                await write_extras(conn, change, journal=False, exposure=has_extras(change))

        await self.inner._write("create a payment", work)

    async def apply(self, change: Any, *, expected: Any) -> bool:
        import attrs

        from paymentorch.adapters.postgres.changes import apply_change, write_extras

        bare = attrs.evolve(change, plan=None, more_events=())

        async def work(conn: Any) -> bool:
            async with conn.transaction():
                if not await apply_change(conn, bare, expected):
                    return False
                await write_extras(conn, change, journal=False, exposure=False)
                return True

        written: bool = await self.inner._write("change a payment", work)
        return written


_PLAN_ROWS = (
    "SELECT * FROM paymentorch_plans WHERE payment_id = %(id)s",
    "SELECT * FROM paymentorch_installments WHERE payment_id = %(id)s ORDER BY number",
    "SELECT * FROM paymentorch_late_fees WHERE payment_id = %(id)s ORDER BY seq",
    "SELECT seq FROM paymentorch_outbox WHERE payment_id = %(id)s ORDER BY event_id",
    "SELECT amount::text FROM paymentorch_exposure WHERE customer_id = %(customer)s",
)


def _rows_of(url: str, payments: list[po.Payment]) -> list[str]:
    """Each payment's rows (``_ROWS`` and ``_PLAN_ROWS``) as text, its id, its
    customer's and its outbox sequence numbers made alike."""
    import psycopg

    from paymentorch.adapters._sql import PAYMENT_COLUMNS

    found = []
    with psycopg.connect(url) as conn:
        for payment in payments:
            ids = {"id": payment.id, "customer": payment.customer_id}
            rows = [
                conn.execute(sql.format(PAYMENT_COLUMNS), ids).fetchall()
                for sql in (*_ROWS, *_PLAN_ROWS)
            ]
            seqs = [row[0] for row in rows[-2]]  # in the order the events were written
            order = [sorted(seqs).index(seq) for seq in seqs]
            text = repr([*rows[:-2], order, rows[-1]]).replace(str(payment.id), "<id>")
            found.append(text.replace(payment.customer_id, "<customer>"))
    return found


@pytest.mark.parametrize("action", ["confirm", "authorize", "cancel", "fail"])
async def test_a_plan_written_in_one_statement_leaves_the_rows_statements_apart_leave(
    postgres_backend: Backend, action: str
) -> None:
    """A pay-in-4 payment created under a credit limit in one statement, then changed in
    one statement decided on what the one step found, leaves the same rows, byte for
    byte (the events in the same order, the exposure), as writing its exposure move,
    plan and events in statements of their own and reading the payment and its plan
    before a change: only the ids differ."""
    from paymentorch.clock import utc_now

    now = utc_now().replace(microsecond=654321)
    credit = po.CreditPolicy(limit=Decimal("1000.00"), currency="USD")
    store = await postgres_backend.open_store()
    one = po.PaymentService(store, cache=None, clock=lambda: now, credit=credit)
    two = po.PaymentService(_Apart(store), cache=None, clock=lambda: now, credit=credit)
    done = []
    try:
        for customer, service in (("ABCD-00001", one), ("ABCD-00002", two)):
            payment = await service.create_payment(
                customer, "125.50", actor=ADMIN, plan=po.PlanTerms(), metadata={"o": "A-1"}
            )
            with po.correlation("req-2"):
                reason = {"reason": "no"} if action in {"cancel", "fail"} else {}
                await getattr(service, f"{action}_payment")(payment.id, actor=ADMIN, **reason)
            done.append(payment)
    finally:
        await store.aclose()
    assert postgres_backend.url is not None
    mine, theirs = _rows_of(postgres_backend.url, done)
    assert mine == theirs
    assert "plan." in mine or action == "authorize"


async def test_a_creation_the_limit_refuses_writes_nothing(postgres_backend: Backend) -> None:
    """A pay-in-4 creation past the customer's credit limit raises CreditLimitExceeded
    with the exposure as it is, and leaves no payment, plan, installment, event or
    exposure move; a repeat of a key it refused is refused again."""
    import psycopg

    credit = po.CreditPolicy(limit=Decimal("100.00"), currency="USD")
    async with po.PaymentService(
        await postgres_backend.open_store(), cache=None, credit=credit
    ) as service:
        await service.create_payment("LIMT-00009", "80.00", actor=ADMIN, plan=po.PlanTerms())
        for key in (None, "k-1", "k-1"):
            with pytest.raises(po.CreditLimitExceeded) as caught:
                await service.create_payment(
                    "LIMT-00009", "20.01", actor=ADMIN, plan=po.PlanTerms(), idempotency_key=key
                )
            assert (caught.value.exposure, caught.value.requested, caught.value.limit) == (
                Decimal("80.00"), Decimal("20.01"), Decimal("100.00"),
            )  # fmt: skip
    assert postgres_backend.url is not None
    with psycopg.connect(postgres_backend.url) as conn:
        counts = [
            conn.execute(f"SELECT count(*) FROM paymentorch_{table}").fetchone()[0]  # type: ignore[index]
            for table in ("payments", "plans", "installments", "outbox", "audit_entries")
        ]
        exposure = conn.execute(
            "SELECT amount FROM paymentorch_exposure WHERE customer_id = 'LIMT-00009'"
        ).fetchall()
    assert counts == [1, 1, 4, 1, 1]
    assert exposure == [(Decimal("80.00"),)]


async def test_a_pay_in_4_lifecycle_is_two_round_trips(
    postgres_backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under a credit limit, a pay-in-4 creation is one round trip and its confirmation
    one (decided on the payment and plan as the store wrote them), as a plain lifecycle.
    A later transition or refund reads the payment with its plan once (two); a plan
    payment the store no longer keeps as written takes two, one it no longer keeps the id
    of or did not create three (the one step finds the payment, then the plan is read)."""
    from paymentorch.adapters.postgres import store
    from tests.proxy import RoundTrips

    monkeypatch.setattr(store, "FRESH_PLANS", 2)
    monkeypatch.setattr(store, "KNOWN_PLANS", 3)
    assert postgres_backend.url is not None
    credit = po.CreditPolicy(limit=Decimal("1000.00"), currency="USD")
    with RoundTrips.to(postgres_backend.url) as proxy:
        url = proxy.url(postgres_backend.url)
        async with await po.open_service(url, pool_size=1, credit=credit) as service:
            counts, lived = [], []
            for plan in (po.PlanTerms(), None):
                before = proxy.count
                payment = await service.create_payment(
                    "TRIP-00001", "125.50", actor=ADMIN, plan=plan
                )
                created = proxy.count
                await service.confirm_payment(payment.id, actor=ADMIN)
                counts.append((created - before, proxy.count - created))
                lived.append(payment)
            assert counts == [(1, 1), (1, 1)]
            before = proxy.count
            await service.refund_payment(lived[0].id, "10.00", actor=ADMIN)
            assert proxy.count - before == 2  # read with its plan once, then written
            planned = await service.create_payment(
                "TRIP-00001", "10.00", actor=ADMIN, plan=po.PlanTerms()
            )
            await service.authorize_payment(planned.id, actor=ADMIN)
            before = proxy.count
            await service.capture_payment(planned.id, actor=ADMIN)
            assert proxy.count - before == 2  # read with its plan, then written
            terms = po.PlanTerms()
            made = [
                await service.create_payment("TRIP-00002", "10.00", actor=ADMIN, plan=terms)
                for _ in range(4)
            ]
            async with await po.open_service(url, pool_size=1, credit=credit) as other:
                confirms = []
                for payment, by in zip(made, (service, service, service, other), strict=True):
                    before = proxy.count
                    await by.confirm_payment(payment.id, actor=ADMIN)
                    confirms.append(proxy.count - before)
            # the oldest forgotten; the next known but no longer kept as written; the
            # third kept; the fourth confirmed through another store
            assert confirms == [3, 2, 1, 3]


async def test_a_plan_payment_changed_elsewhere_since_its_creation_is_decided_again(
    postgres_backend: Backend,
) -> None:
    """A store decides a plan payment's first transition on the payment and plan as it
    wrote them; when another store changed the payment meanwhile, the version guard
    refuses that write and the service decides again on a read: it answers what the
    payment now allows and writes nothing twice."""
    import psycopg

    assert postgres_backend.url is not None
    credit = po.CreditPolicy(limit=Decimal("1000.00"), currency="USD")
    async with (
        await po.open_service(postgres_backend.url, credit=credit) as one,
        await po.open_service(postgres_backend.url, credit=credit) as two,
    ):
        cancelled = await one.create_payment(
            "RACE-00001", "125.50", actor=ADMIN, plan=po.PlanTerms()
        )
        await two.cancel_payment(cancelled.id, actor=ADMIN, reason="changed mind")
        with pytest.raises(po.InvalidTransition):
            await one.confirm_payment(cancelled.id, actor=ADMIN)
        authorized = await one.create_payment(
            "RACE-00001", "125.50", actor=ADMIN, plan=po.PlanTerms()
        )
        await two.authorize_payment(authorized.id, actor=ADMIN)
        captured = await one.capture_payment(authorized.id, actor=ADMIN)
        assert (captured.status, captured.version) == (po.PaymentStatus.CONFIRMED, 3)
        assert (await one.verify()).ok
    with psycopg.connect(postgres_backend.url) as conn:
        rows = conn.execute(
            "SELECT payment_id, action FROM paymentorch_audit_entries"
            " WHERE payment_id = ANY(%s) ORDER BY seq",
            ([cancelled.id, authorized.id],),
        ).fetchall()
    assert [action for _, action in rows] == [
        "created", "cancelled", "created", "authorized", "captured"
    ]  # fmt: skip


def test_long_statements_are_numbered_once_as_psycopg_would() -> None:
    """``numbered`` turns psycopg's placeholders into the server's: each name keeps one
    number, ``%%`` is a percent sign, and names and positions do not mix."""
    from paymentorch.adapters.postgres.statements import numbered, numbered_params

    text, names = numbered("SELECT %(b)s, %(a)s, %(b)s, 'x%%' LIKE %(c)s")
    assert (text, names) == ("SELECT $1, $2, $1, 'x%' LIKE $3", ("b", "a", "c"))
    assert numbered_params(names, {"a": 1, "b": 2, "c": 3}) == [2, 1, 3]
    assert numbered("VALUES (%s, %s)") == ("VALUES ($1, $2)", None)
    assert numbered_params(None, (1, 2)) == (1, 2)
    with pytest.raises(ValueError, match="both"):
        numbered("SELECT %s, %(a)s")


async def test_a_batch_and_a_creation_of_one_key_under_a_limit_do_not_deadlock(
    postgres_backend: Backend,
) -> None:
    """A creation and a batch holding the same key for the same customer, both under a
    credit limit, queued in that order behind a lock on the customer's exposure row: one
    creates the payment, the other finds the key held (the creation returns the holder,
    or the batch raises IdempotencyConflict), as the in-memory store answers. Both move
    the exposure row before they claim the key: no deadlock."""
    import asyncio

    import psycopg

    assert postgres_backend.url is not None
    credit = po.CreditPolicy(limit=Decimal("1000.00"), currency="USD")
    store = await postgres_backend.open_store()
    service = po.PaymentService(store, cache=None, credit=credit)

    def waiting(conn: psycopg.Connection[Any]) -> int:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).fetchone()
        return 0 if row is None else int(row[0])

    async def queued(conn: psycopg.Connection[Any], count: int) -> None:
        deadline = time.monotonic() + 10
        while waiting(conn) < count:  # the server says who waits: no guessed sleep
            assert time.monotonic() < deadline, "the write never queued for the lock"
            await asyncio.sleep(0.01)

    try:
        await service.create_payment("RACE-00001", "10.00", actor=ADMIN)  # the exposure row
        with (
            psycopg.connect(postgres_backend.url) as locker,
            psycopg.connect(postgres_backend.url, autocommit=True) as watcher,
        ):
            locker.execute(
                "SELECT 1 FROM paymentorch_exposure WHERE customer_id = 'RACE-00001' FOR UPDATE"
            )
            single = asyncio.create_task(
                service.create_payment("RACE-00001", "20.00", actor=ADMIN, idempotency_key="K")
            )
            await queued(watcher, 1)
            batch = asyncio.create_task(
                service.create_payments(
                    [po.NewPayment("RACE-00001", "20.00", idempotency_key="K")], actor=ADMIN
                )
            )
            await queued(watcher, 2)
            locker.commit()
            results = await asyncio.gather(single, batch, return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        assert len(errors) <= 1, results
        assert all(isinstance(e, po.IdempotencyConflict) for e in errors), results
        assert await service.credit_exposure("RACE-00001") == Decimal("30.00")
        assert (await service.verify()).ok
    finally:
        await store.aclose()


async def test_a_capture_of_part_of_the_amount_is_one_round_trip(
    postgres_backend: Backend,
) -> None:
    """Authorizing and capturing part of the amount (no processor) are one round trip
    each; a capture beyond the amount is the one step and the read that says why."""
    from tests.proxy import RoundTrips

    assert postgres_backend.url is not None
    with RoundTrips.to(postgres_backend.url) as proxy:
        url = proxy.url(postgres_backend.url)
        async with await po.open_service(url, pool_size=1) as service:
            payment = await service.create_payment("TRIP-00002", "80.00", actor=ADMIN)
            counts = []
            for step in (
                lambda: service.authorize_payment(payment.id, actor=ADMIN),
                lambda: service.capture_payment(payment.id, actor=ADMIN, amount="80.01"),
                lambda: service.capture_payment(payment.id, actor=ADMIN, amount="60.5"),
            ):
                before = proxy.count
                with contextlib.suppress(po.AmountExceeded):
                    await step()
                counts.append(proxy.count - before)
            assert (await service.get_payment(payment.id)).captured_amount == Decimal("60.50")
    assert counts == [1, 2, 1]


async def test_a_keyed_transition_is_one_round_trip(postgres_backend: Backend) -> None:
    """A confirmation or capture with an idempotency key is one round trip, the key
    claimed in the same statement; its repeat answers the payment as the first call left
    it (the one step, the read that refuses it, the key's read); the key on another
    payment is refused and changes nothing."""
    from tests.proxy import RoundTrips

    assert postgres_backend.url is not None
    with RoundTrips.to(postgres_backend.url) as proxy:
        url = proxy.url(postgres_backend.url)
        async with await po.open_service(url, pool_size=1) as service:
            confirmed = await service.create_payment("TRIP-00004", "80.00", actor=ADMIN)
            held = await service.create_payment("TRIP-00004", "20.00", actor=ADMIN)
            await service.authorize_payment(held.id, actor=ADMIN)
            counts, answers = [], []
            for call in (
                partial(service.confirm_payment, confirmed.id, actor=ADMIN, idempotency_key="c-1"),
                partial(service.confirm_payment, confirmed.id, actor=ADMIN, idempotency_key="c-1"),
                partial(
                    service.capture_payment, held.id, amount="5", actor=ADMIN, idempotency_key="c-2"
                ),
            ):
                before = proxy.count
                answers.append(await call())
                counts.append(proxy.count - before)
            other = await service.create_payment("TRIP-00004", "1.00", actor=ADMIN)
            with pytest.raises(po.IdempotencyConflict, match="another payment"):
                await service.confirm_payment(other.id, actor=ADMIN, idempotency_key="c-1")
            assert (await service.get_payment(other.id)).version == 1
    assert counts == [1, 3, 1]
    assert answers[0] == answers[1]
    assert (answers[2].status, str(answers[2].captured_amount)) == (
        po.PaymentStatus.CONFIRMED, "5.00",
    )  # fmt: skip


async def test_a_refund_is_one_round_trip(postgres_backend: Backend) -> None:
    """A refund of part of a confirmed payment (no processor, no key) is one round trip,
    and so is one of what is left (no amount); one beyond what is left, or with nothing
    left, is the one step and the read that says why."""
    from tests.proxy import RoundTrips

    assert postgres_backend.url is not None
    with RoundTrips.to(postgres_backend.url) as proxy:
        url = proxy.url(postgres_backend.url)
        async with await po.open_service(url, pool_size=1) as service:
            payment = await service.create_payment("TRIP-00003", "80.00", actor=ADMIN)
            await service.confirm_payment(payment.id, actor=ADMIN)
            counts, given = [], []
            for amount in ("30", "50.01", "20", None, None):
                before = proxy.count
                with contextlib.suppress(po.AmountExceeded, po.InvalidTransition):
                    refund = await service.refund_payment(payment.id, amount, actor=ADMIN)
                    given.append(str(refund.amount))
                counts.append(proxy.count - before)
            refunded = await service.get_payment(payment.id)
    assert counts == [1, 2, 1, 1, 2]
    assert given == ["30.00", "20.00", "30.00"]
    assert (refunded.status, refunded.refunded_amount) == (
        po.PaymentStatus.REFUNDED, Decimal("80.00"),
    )  # fmt: skip
