"""Encryption at rest on SQLite and PostgreSQL: no clear text in the file or in
``pg_dump``, ciphertexts bound to their row, the customer index still used, online
rotation under concurrent writes, and sealing a database written in clear."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import sqlite3
import subprocess
import uuid
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import paymentorch as po
from paymentorch._migrate import migrate_sync
from paymentorch._rotate import rotate_key
from paymentorch.testing import Backend
from tests import brokers
from tests.encryption import INDEX_KEY, KEYS, SETTING, encryption

ADMIN = po.Actor("admin-1", roles={po.Role.ADMIN})
CUSTOMER = "QQQQ-77777"
SECRET = "ZEBRA-SECRET-42"
CREDIT = po.CreditPolicy.parse("100000.00 USD")
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(params=[pytest.param("sqlite", marks=pytest.mark.sqlite),
                        pytest.param("postgres", marks=pytest.mark.postgres)])  # fmt: skip
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'sealed.db'}"
        migrate_sync(url)
        return url
    backend: Backend = request.getfixturevalue("postgres_backend")  # emptied
    assert backend.url is not None
    return backend.url


def _at_rest(url: str) -> bytes:
    """Everything the database keeps: the SQLite file and its WAL, or a ``pg_dump``."""
    if url.startswith("sqlite"):
        path = Path(url.split(":///", 1)[1])
        return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
    dump = ["pg_dump", "--data-only", url]
    return subprocess.run(dump, capture_output=True, check=True).stdout


def _sql(url: str, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """A statement on the raw database, as an attacker or a careless operator would."""
    if url.startswith("sqlite"):
        with contextlib.closing(sqlite3.connect(url.split(":///", 1)[1])) as conn:
            rows = conn.execute(statement.replace("%s", "?"), params).fetchall()
            conn.commit()
            return rows
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


async def _shop(service: po.PaymentService, count: int) -> list[po.Payment]:
    """Payments for one customer with a secret in the metadata: some confirmed and
    refunded, one in installments, events left in the outbox."""
    made = []
    for i in range(count):
        plan = po.PlanTerms(installments=4) if i == 0 else None
        payment = await service.create_payment(
            CUSTOMER, "40.00", actor=ADMIN, metadata={"note": SECRET, "n": str(i)}, plan=plan
        )
        if i == 0 or i % 3 == 1:  # the plan's customer owes the rest: a receivable
            await service.confirm_payment(payment.id, actor=ADMIN)
            await service.refund_payment(payment.id, "5.00", actor=ADMIN)
        made.append(payment)
    return made


async def test_clear_text_is_nowhere_at_rest(database: str) -> None:
    """Customer id and metadata values appear in no table (payments, outbox snapshots,
    exposure); the service reads, lists and checks credit as before."""
    sealed = encryption()
    async with await po.open_service(database, encryption=sealed, credit=CREDIT) as service:
        made = await _shop(service, 12)
        listed = await service.list_payments(customer_id=CUSTOMER, limit=50)
        assert {p.id for p in listed.items} == {p.id for p in made}
        assert all(p.customer_id == CUSTOMER for p in listed.items)
        assert (await service.get_payment(made[3].id)).metadata == {"note": SECRET, "n": "3"}
        assert await service.credit_exposure(CUSTOMER) > Decimal(0)
        relayed: list[po.PaymentEvent] = []

        async def sink(events: Sequence[po.PaymentEvent]) -> None:
            relayed.extend(events)

        stats = await service.store.outbox_stats()
        assert stats.pending > 12
        kept = _at_rest(database)
        while await po.OutboxRelay(service.store, sink).run_once():
            pass
    assert CUSTOMER.encode() not in kept
    assert SECRET.encode() not in kept
    assert sealed.index(CUSTOMER).encode() in kept
    assert b"k1:" in kept
    assert {e.payment["customer_id"] for e in relayed} == {CUSTOMER}
    assert {e.payment["metadata"]["note"] for e in relayed} == {SECRET}


async def test_the_books_rest_sealed(database: str) -> None:
    """A customer's receivable rests under the blind index, and reads back under the
    customer id: the journal, the balance and the integrity check."""
    sealed = encryption()
    async with await po.open_service(database, encryption=sealed) as service:
        order = await service.create_payment(CUSTOMER, "40.00", actor=ADMIN, plan=po.PlanTerms())
        await service.confirm_payment(order.id, actor=ADMIN)
        await service.pay_installment(order.id, 2, actor=ADMIN)
        owners = {p.account.owner for e in await service.journal(order.id) for p in e.lines}
        assert CUSTOMER in owners
        receivable = po.Account(po.AccountKind.RECEIVABLE, CUSTOMER, "USD")
        assert await service.balance(receivable) == Decimal("20.00")
        assert (await service.verify()).ok
    rows = _sql(database, "SELECT DISTINCT owner FROM paymentorch_postings"
                " WHERE account_kind = 'receivable'")  # fmt: skip
    assert rows == [(sealed.index(CUSTOMER),)]
    assert CUSTOMER.encode() not in _at_rest(database)


async def test_a_ciphertext_moved_to_another_row_does_not_decrypt(database: str) -> None:
    """Copying one row's sealed values onto another fails with a clear error that names
    the payment; a key that is gone does too."""
    async with await po.open_service(database, encryption=encryption()) as service:
        one, two = (await _shop(service, 2))[:2]
        _sql(
            database,
            "UPDATE paymentorch_payments SET metadata ="
            " (SELECT metadata FROM paymentorch_payments WHERE id = %s) WHERE id = %s",
            _ids(database, one.id, two.id),
        )
        with pytest.raises(po.DecryptionFailed) as caught:
            await service.get_payment(two.id)
        assert caught.value.code == "decryption_failed"
        assert isinstance(caught.value, po.StoreError)
        assert str(two.id) in str(caught.value)
        assert caught.value.field.startswith("metadata.") or caught.value.field == "customer_id"
        assert (await service.get_payment(one.id)).customer_id == CUSTOMER
    without_k1 = encryption("k2", keys=("k2",))
    async with await po.open_service(database, encryption=without_k1) as service:
        with pytest.raises(po.DecryptionFailed, match="no key 'k1'"):
            await service.get_payment(one.id)


def _ids(url: str, *ids: Any) -> list[Any]:
    return [i.hex if url.startswith("sqlite") else i for i in ids]


async def test_listing_by_customer_uses_the_customer_index(database: str) -> None:
    """The blind index is an equality on the indexed column: the planner uses the index."""
    sealed = encryption()
    async with await po.open_service(database, encryption=sealed) as service:
        await _shop(service, 3)
    index = sealed.index(CUSTOMER)
    if database.startswith("sqlite"):
        from paymentorch.adapters.sqlite.statements import SELECT

        plan = _sql(
            database,
            f"EXPLAIN QUERY PLAN {SELECT} WHERE customer_id = ?"
            " ORDER BY created_at DESC, id DESC LIMIT 50",
            [index],
        )
        text = " ".join(str(row[-1]) for row in plan)
    else:
        from paymentorch.adapters.postgres.statements import list_query

        sql, params = list_query(None, index, 50, None)
        import psycopg

        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute("SET enable_seqscan = off")  # a tiny table: ask what it could use
            text = " ".join(r[0] for r in conn.execute(f"EXPLAIN {sql}", params).fetchall())
    assert "paymentorch_payments_customer_created" in text, text


async def test_rotation_under_concurrent_writes_loses_nothing(database: str) -> None:
    """``rotate_key`` re-seals 200 payments with k2 while writers confirm and create (up
    to 300 rounds): afterwards k2 alone opens everything, and every write is there."""
    old, new = encryption("k1"), encryption("k2")
    async with await po.open_service(database, encryption=old, credit=CREDIT) as service:
        first = [p.id for p in await _shop(service, 200)]
    async with await po.open_service(database, encryption=new, credit=CREDIT) as service:
        rotation = asyncio.create_task(asyncio.to_thread(rotate_key, database, new, batch_size=25))
        expected: dict[Any, po.PaymentStatus] = {}
        created = []
        i = 0
        while not rotation.done() and i < 300:  # writers race the rotation, boundedly
            payment = await service.get_payment(first[i % len(first)])
            if payment.status is po.PaymentStatus.PENDING:
                expected[payment.id] = (
                    await service.confirm_payment(payment.id, actor=ADMIN)
                ).status
            fresh = await service.create_payment(
                CUSTOMER, "1.00", actor=ADMIN, metadata={"w": SECRET}
            )
            created.append(fresh.id)
            i += 1
        done = await rotation
    assert done.payments == 200
    assert len(created) > 0
    only_k2 = encryption("k2", keys=("k2",))
    async with await po.open_service(database, encryption=only_k2, credit=CREDIT) as service:
        for pid in first + created:
            payment = await service.get_payment(pid)
            assert payment.customer_id == CUSTOMER
            assert SECRET in payment.metadata.values()
            if pid in expected:
                assert payment.status is expected[pid]
        listed = await service.count_payments(customer_id=CUSTOMER)
        assert listed == len(first) + len(created)
        delivered = 0

        async def sink(events: Sequence[po.PaymentEvent]) -> None:
            nonlocal delivered
            delivered += len(events)

        while await po.OutboxRelay(service.store, sink).run_once():
            pass
        assert delivered > len(first)
    print(f"rotation: {done}, writes during it: {len(created)} created, {len(expected)} confirmed")


async def test_a_clear_database_is_sealed_by_rotate_key(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Written without encryption, then opened with it (clear rows still read), then
    sealed by ``paymentorch rotate-key``: nothing clear remains, lists and credit agree."""
    from paymentorch.cli import main

    async with await po.open_service(database, credit=CREDIT) as service:
        made = await _shop(service, 10)
        exposure = await service.credit_exposure(CUSTOMER)
    assert CUSTOMER.encode() in _at_rest(database)
    async with await po.open_service(database, encryption=encryption(), credit=CREDIT) as service:
        assert (await service.get_payment(made[0].id)).customer_id == CUSTOMER
    monkeypatch.setenv("PAYMENTORCH_ENCRYPTION_KEY", SETTING)
    assert await asyncio.to_thread(main, ["rotate-key", database]) == 0
    assert await asyncio.to_thread(main, ["rotate-key", database]) == 0  # nothing left
    kept = _at_rest(database)
    assert CUSTOMER.encode() not in kept
    assert SECRET.encode() not in kept
    async with await po.open_service(database, encryption=encryption(), credit=CREDIT) as service:
        listed = await service.list_payments(customer_id=CUSTOMER, limit=50)
        assert {p.id for p in listed.items} == {p.id for p in made}
        assert await service.credit_exposure(CUSTOMER) == exposure
        receivable = po.Account(po.AccountKind.RECEIVABLE, CUSTOMER, "USD")
        assert await service.balance(receivable) == (await service.plan(made[0].id)).owed
        assert (await service.verify()).ok


def test_keys_are_checked_and_parsed() -> None:
    """Every problem with the keys in one error; the setting's first key is active."""
    with pytest.raises(ValueError, match="must be 32 bytes") as caught:
        po.FieldEncryption({"bad id!": b"short"}, active="k9", index_key=b"x")
    message = str(caught.value)
    assert "key id 'bad id!'" in message
    assert "active key 'k9'" in message
    assert "index_key" in message
    parsed = po.FieldEncryption.parse(SETTING)
    assert parsed.active == "k1"
    assert parsed.index(CUSTOMER) == encryption().index(CUSTOMER)
    assert po.FieldEncryption.parse(po.FieldEncryption.generate("2026")).active == "2026"
    with pytest.raises(ValueError, match="index="):
        po.FieldEncryption.parse(f"k1={base64.b64encode(KEYS['k1']).decode()}")
    assert len(INDEX_KEY) == 32


async def test_the_relay_command_opens_sealed_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``paymentorch relay`` with ``PAYMENTORCH_ENCRYPTION_KEY`` hands its sink clear
    events: consumers never see ciphertext."""
    from paymentorch.cli import main
    from tests.test_sinks import Collected

    url = f"sqlite:///{tmp_path / 'relay.db'}"
    async with await po.open_service(url, encryption=encryption(), create_schema=True) as service:
        made = await _shop(service, 2)
    monkeypatch.setenv("PAYMENTORCH_ENCRYPTION_KEY", SETTING)
    Collected.events.clear()
    code = await asyncio.to_thread(
        main, ["relay", url, "--sink", "tests.test_sinks:Collected", "--once"]
    )
    assert code == 0
    assert {e.payment_id for e in Collected.events} == {p.id for p in made}
    assert {e.payment["customer_id"] for e in Collected.events} == {CUSTOMER}


async def test_a_refused_credit_check_names_the_customer(database: str) -> None:
    """The store only knows the blind index; the error still names the customer."""
    limit = po.CreditPolicy.parse("50.00 USD")
    async with await po.open_service(database, encryption=encryption(), credit=limit) as service:
        await service.create_payment(CUSTOMER, "40.00", actor=ADMIN)
        with pytest.raises(po.CreditLimitExceeded) as caught:
            await service.create_payment(CUSTOMER, "20.00", actor=ADMIN)
    assert caught.value.customer_id == CUSTOMER
    assert "bi1." not in str(caught.value)


def test_the_blocking_twin_seals_too(tmp_path: Path) -> None:
    """``open_sync_service(url, encryption=...)`` seals and opens as the async one does,
    and each reads what the other wrote."""
    url = f"sqlite:///{tmp_path / 'twin.db'}"
    with po.open_sync_service(url, encryption=encryption(), create_schema=True) as twin:
        payment = twin.create_payment(CUSTOMER, "9.00", actor=ADMIN, metadata={"note": SECRET})
        assert twin.get_payment(payment.id).metadata == {"note": SECRET}
        assert twin.count_payments(customer_id=CUSTOMER) == 1
    kept = _at_rest(url)
    assert CUSTOMER.encode() not in kept
    assert SECRET.encode() not in kept

    async def read() -> po.Payment:
        async with await po.open_service(url, encryption=encryption()) as service:
            return await service.get_payment(payment.id)

    assert asyncio.run(read()).customer_id == CUSTOMER


async def test_a_customer_index_moved_to_another_row_is_caught(database: str) -> None:
    """A row whose blind index is another customer's (a customer column copied between
    rows) does not read back: filters and credit checks trust that index."""
    async with await po.open_service(database, encryption=encryption()) as service:
        mine = await service.create_payment(CUSTOMER, "9.00", actor=ADMIN)
        theirs = await service.create_payment("WXYZ-00001", "9.00", actor=ADMIN)
        _sql(
            database,
            "UPDATE paymentorch_payments SET customer_id ="
            " (SELECT customer_id FROM paymentorch_payments WHERE id = %s) WHERE id = %s",
            _ids(database, theirs.id, mine.id),
        )
        with pytest.raises(po.DecryptionFailed, match="index") as caught:
            await service.get_payment(mine.id)
        assert caught.value.field == "customer_id"
        assert (await service.get_payment(theirs.id)).customer_id == "WXYZ-00001"


async def test_cache_entries_rest_sealed(database: str) -> None:
    """With encryption, a cache holds the sealed forms: Redis keeps neither the customer
    id nor a metadata value in clear, and a local tier holds sealed payments too."""
    brokers.require("Redis", brokers.REDIS)
    import redis

    namespace = f"sealed-{uuid.uuid4().hex[:8]}"
    for cache in (po.RedisCache(REDIS_URL, namespace=namespace, local=False), po.LocalCache()):
        async with await po.open_service(database, encryption=encryption(), cache=cache) as service:
            payment = await service.create_payment(
                CUSTOMER, "9.00", actor=ADMIN, metadata={"note": SECRET}
            )
            read = await service.get_payment(payment.id)  # from the cache
            assert (read.customer_id, read.metadata["note"]) == (CUSTOMER, SECRET)
            cached = await cache.get(payment.id)
            assert cached is not None
            assert cached.customer_id == encryption().index(CUSTOMER)
            assert SECRET not in str(cached.metadata)
        if isinstance(cache, po.RedisCache):
            await cache.aclose()
            client = redis.Redis.from_url(REDIS_URL)
            try:
                raw = b"".join(client.get(k) or b"" for k in client.keys(f"{namespace}:*"))
            finally:
                client.close()
            assert raw
            assert CUSTOMER.encode() not in raw
            assert SECRET.encode() not in raw


def test_every_method_that_carries_a_customer_seals_it() -> None:
    """EncryptedStore passes through only what carries no customer id or metadata: each
    port method that takes or returns a payment, a change, an event, a journal or a
    customer is its own (so a new one cannot slip through unsealed), async and blocking."""
    import re
    import typing

    from paymentorch import ports
    from paymentorch.adapters.encrypted import EncryptedStore
    from paymentorch.sync import ports as sync_ports
    from paymentorch.sync.adapters.encrypted import SyncEncryptedStore

    carries = ("Payment", "Change", "OutboxMessage", "JournalEntry", "PaymentRecords",
               "KeyedChange", "Account", "customer_id")  # fmt: skip
    for port, store in ((ports.PaymentStore, EncryptedStore),
                        (sync_ports.SyncPaymentStore, SyncEncryptedStore)):  # fmt: skip
        names = {n for n in dir(port) if not n.startswith("_") and callable(getattr(port, n))}
        hints = {name: str(typing.get_type_hints(getattr(port, name))) for name in names}
        sealed = {
            name for name in names if any(re.search(rf"\b{w}\b", hints[name]) for w in carries)
        }
        assert {"add", "get", "list_payments", "claim_events", "journal"} <= sealed
        assert sealed - set(vars(store)) == set(), port


@pytest.mark.asyncio
@pytest.mark.parametrize("amount", ["1E-20000", "12.5"])
async def test_an_encrypted_store_captures_in_one_step_as_a_plain_one(
    backend: Backend, amount: str
) -> None:
    """Through ``FieldEncryption`` a capture of part of the amount takes that amount at
    the currency's scale, the customer read back in the clear; an amount no column holds
    is a ValidationError; the books agree."""
    admin = po.Actor("admin-1", roles={po.Role.ADMIN})
    sealed = po.FieldEncryption.parse(po.FieldEncryption.generate("k1"))
    async with await po.open_service(
        backend.url or "memory://", encryption=sealed, cache=po.LocalCache()
    ) as service:
        payment = await service.create_payment("ABCD-12345", "100.00", actor=admin)
        await service.authorize_payment(payment.id, actor=admin)
        if amount == "12.5":
            done = await service.capture_payment(payment.id, actor=admin, amount=amount)
            assert (done.customer_id, str(done.captured_amount)) == ("ABCD-12345", "12.50")
            assert await service.get_payment(payment.id) == done
        else:
            with pytest.raises(po.ValidationError):
                await service.capture_payment(payment.id, actor=admin, amount=amount)
        assert (await service.verify()).ok


async def test_encrypted_rest_refunds_and_fresh_plans(shared_backend: Backend) -> None:
    """Refunds of what is left racing refunds of part, and a plan payment decided on the
    sealed payment its store kept, through two encrypted services: the money adds up,
    and what they answer and publish is open."""
    from paymentorch.testing.contract._helpers import CUSTOMER as OWNER
    from paymentorch.testing.contract._helpers import USER
    from tests.test_refund_and_plan_attacks import _REFUSED, _agree, _confirmed, _events

    url = shared_backend.url
    async with await po.open_service(url, encryption=encryption()) as a, \
            await po.open_service(url, encryption=encryption()) as b:  # fmt: skip
        p = await _confirmed(a, "50.00")
        calls = [
            a.refund_payment(p.id, actor=ADMIN),
            b.refund_payment(p.id, "5", actor=ADMIN),
            b.refund_payment(p.id, actor=ADMIN),
            a.refund_payment(p.id, "7", actor=ADMIN),
        ]
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert not [r for r in results if isinstance(r, BaseException)
                    and not isinstance(r, _REFUSED)], results  # fmt: skip
        given = [r for r in results if isinstance(r, po.Operation)]
        final = await _agree(a, p.id, given)
        assert final.status is po.PaymentStatus.REFUNDED
        assert final.customer_id == OWNER
        q = await a.create_payment(
            OWNER, "80.00", actor=USER, plan=po.PlanTerms(), metadata={"secret": "s3"}
        )
        await b.confirm_payment(q.id, actor=ADMIN)
        rest = await a.refund_payment(q.id, actor=ADMIN)
        assert rest.amount == Decimal("80.00")
        await _agree(a, q.id, [rest])
        m = await a.create_payment(
            OWNER, "80.00", actor=USER, plan=po.PlanTerms(), metadata={"secret": "s4"}
        )
        mine = await a.confirm_payment(m.id, actor=ADMIN)  # decided on the sealed memo
        assert (mine.customer_id, dict(mine.metadata)) == (OWNER, {"secret": "s4"})
        assert mine == await a.get_payment(m.id)
        for event in await _events(a.store, m.id):
            assert event.payment["customer_id"] == OWNER
            assert dict(event.payment["metadata"]) == {"secret": "s4"}
