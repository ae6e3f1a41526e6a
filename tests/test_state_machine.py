"""A model-based test: random sequences of operations agree with a simple model."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    rule,
)

import paymentorch as po
from paymentorch.clock import utc_now
from paymentorch.domain import uuid7
from paymentorch.testing._money import books_problems

USER = po.Actor("user", roles={po.Role.USER})
ADMIN = po.Actor("admin", roles={po.Role.ADMIN})
TARGET = {
    "confirm": "Confirmed",
    "authorize": "Authorized",
    "capture": "Confirmed",
    "fail": "Failed",
    "cancel": "Cancelled",
}
SOURCES = {
    "confirm": {"Pending"},
    "authorize": {"Pending"},
    "capture": {"Authorized"},
    "fail": {"Pending", "Authorized"},
    "cancel": {"Pending", "Authorized"},
}
EVENT = {
    "created": "payment.created",
    "confirm": "payment.confirmed",
    "authorize": "payment.authorized",
    "capture": "payment.confirmed",
    "fail": "payment.failed",
    "cancel": "payment.cancelled",
    "refund": "payment.refunded",
}
AUDIT = {
    "created": "created",
    "confirm": "confirmed",
    "authorize": "authorized",
    "capture": "captured",
    "fail": "failed",
    "cancel": "cancelled",
    "refund": "refunded",
}

URLS: list[Callable[[], str]] = []  # how to make a fresh, empty database per run
CREDIT = po.CreditPolicy(limit=Decimal("1000000.00"), currency="USD")
CUSTOMERS = ["ABCD-00001", "ABCD-00002", "WXYZ-99999"]


class PaymentMachine(RuleBasedStateMachine):
    """Drives a SyncPaymentService and a dict model side by side."""

    payments = Bundle("payments")

    @initialize()
    def open(self) -> None:
        self.service = po.open_sync_service(URLS[-1](), credit=CREDIT)
        self.model: dict[UUID, dict[str, Any]] = {}
        self.keys: dict[str, tuple[UUID, str]] = {}
        self.events: list[tuple[UUID, str]] = []

    def teardown(self) -> None:
        if hasattr(self, "service"):
            self.service.close()

    @rule(
        target=payments,
        customer=st.sampled_from(CUSTOMERS),
        amount=st.sampled_from(["1.00", "10.50", "999999.99"]),
        key=st.one_of(st.none(), st.sampled_from(["k1", "k2", "k3"])),
    )
    def create(self, customer: str, amount: str, key: str | None) -> Any:
        known = self.keys.get(key) if key else None
        try:
            payment = self.service.create_payment(customer, amount, actor=USER, idempotency_key=key)
        except po.IdempotencyConflict:
            assert known is not None
            assert known[1] != f"{customer}/{amount}"
            return multiple()
        except po.CreditLimitExceeded as exc:
            assert known is None
            assert exc.exposure == self.owed(customer)
            assert exc.exposure + Decimal(amount) > CREDIT.limit
            return multiple()
        if known is None:
            assert self.owed(customer) + Decimal(amount) <= CREDIT.limit
        if known is not None:
            assert known[1] == f"{customer}/{amount}"
            assert payment.id == known[0]
            return multiple()
        self.model[payment.id] = {
            "customer": customer,
            "status": "Pending",
            "version": 1,
            "trail": ["created"],
            "amount": Decimal(amount),
            "captured": Decimal(0),
            "refunded": Decimal(0),
        }
        self.events.append((payment.id, EVENT["created"]))
        if key:
            self.keys[key] = (payment.id, f"{customer}/{amount}")
        return payment.id

    @rule(
        pid=payments,
        action=st.sampled_from(list(TARGET)),
        share=st.sampled_from([None, Decimal("0.5"), Decimal("1"), Decimal("1.5")]),
    )
    def change(self, pid: UUID, action: str, share: Decimal | None) -> None:
        entry = self.model[pid]
        capture = None if share is None else (entry["amount"] * share).quantize(Decimal("0.01"))
        try:
            if action == "fail":
                payment = self.service.fail_payment(pid, reason="declined", actor=ADMIN)
            elif action == "capture":
                payment = self.service.capture_payment(pid, actor=ADMIN, amount=capture)
            else:
                payment = getattr(self.service, f"{action}_payment")(pid, actor=ADMIN)
        except po.InvalidTransition as exc:
            assert entry["status"] not in SOURCES[action]
            assert exc.status.value == entry["status"]
            return
        except po.AmountExceeded:
            assert action == "capture"
            assert capture is not None
            assert capture > entry["amount"]
            return
        except po.ValidationError:  # more than any payment may be: checked at the door
            assert action == "capture"
            assert capture is not None
            assert capture > po.ValidationPolicy().max_amount_for("USD")
            return
        assert entry["status"] in SOURCES[action]
        entry.update(status=TARGET[action], version=entry["version"] + 1)
        if action == "confirm":
            entry["captured"] = entry["amount"]
        elif action == "capture":
            entry["captured"] = entry["amount"] if capture is None else capture
        entry["trail"].append(AUDIT[action])
        self.events.append((pid, EVENT[action]))
        assert payment.status.value == entry["status"]
        assert payment.captured_amount == entry["captured"]

    @rule(pid=payments, amount=st.sampled_from([None, "0.01", "1.00", "5.25", "999999.99"]))
    def refund(self, pid: UUID, amount: str | None) -> None:
        entry = self.model[pid]
        left = entry["captured"] - entry["refunded"]
        try:
            operation = self.service.refund_payment(pid, amount, actor=ADMIN)
        except po.InvalidTransition:
            assert entry["status"] != "Confirmed"
            return
        except po.AmountExceeded:
            assert entry["status"] == "Confirmed"
            assert amount is not None
            assert Decimal(amount) > left
            return
        assert entry["status"] == "Confirmed"
        asked = left if amount is None else Decimal(amount)
        assert operation.amount == asked
        entry["refunded"] += asked
        entry["version"] += 1
        if entry["refunded"] == entry["captured"]:
            entry["status"] = "Refunded"
        entry["trail"].append(AUDIT["refund"])
        self.events.append((pid, EVENT["refund"]))

    @rule(pid=payments)
    def get(self, pid: UUID) -> None:
        payment = self.service.get_payment(pid)
        assert (payment.status.value, payment.version) == (
            self.model[pid]["status"],
            self.model[pid]["version"],
        )

    @rule()
    def get_missing(self) -> None:
        with pytest.raises(po.PaymentNotFound):
            self.service.get_payment(uuid7())

    @rule(limit=st.integers(1, 4), status=st.sampled_from([None, *TARGET.values(), "Pending"]))
    def list_all(self, limit: int, status: str | None) -> None:
        seen: list[UUID] = []
        cursor = None
        while True:
            page = self.service.list_payments(status=status, limit=limit, cursor=cursor)
            seen += [p.id for p in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        expected = [pid for pid, e in self.model.items() if status in (None, e["status"])]
        assert seen == list(reversed(expected))

    @rule(pid=consumes(payments))
    def audit(self, pid: UUID) -> None:
        trail = self.service.audit_trail(pid)
        assert [e.action for e in trail] == self.model[pid]["trail"]

    @invariant()
    def money_adds_up(self) -> None:
        """0 <= refunded <= captured <= amount, after every step, in the store itself."""
        if not hasattr(self, "service"):
            return
        for pid, entry in self.model.items():
            stored = self.service.store.get(pid)
            assert stored is not None
            assert Decimal(0) <= stored.refunded_amount <= stored.captured_amount
            assert stored.captured_amount <= stored.amount
            assert (stored.captured_amount, stored.refunded_amount) == (
                entry["captured"],
                entry["refunded"],
            )
            assert stored.status.value == entry["status"]

    def owed(self, customer: str) -> Decimal:
        """The model's exposure: the customer's Pending and Authorized payments."""
        return sum(
            (
                e["amount"]
                for e in self.model.values()
                if e["customer"] == customer and e["status"] in ("Pending", "Authorized")
            ),
            Decimal(0),
        )

    @invariant()
    def exposure_is_what_is_owed(self) -> None:
        """The stored exposure equals the sum it stands for, after every step."""
        if hasattr(self, "service"):
            for customer in CUSTOMERS:
                assert self.service.credit_exposure(customer) == self.owed(customer)

    @invariant()
    def books_agree(self) -> None:
        """The journal equals the payments after every step: verify finds nothing, the
        merchant is owed what was captured less refunded, and it all went through the
        clearing account of money moved by hand."""
        if not hasattr(self, "service"):
            return
        payments = [self.service.get_payment(pid) for pid in self.model]
        report = self.service.verify()
        found = books_problems(payments, plans={}, operations=[], movements={},
                               balance=self.service.balance, report=report)  # fmt: skip
        assert found == []
        net = sum((e["captured"] - e["refunded"] for e in self.model.values()), Decimal(0))
        manual = po.Account(po.AccountKind.CLEARING, "manual", "USD")
        assert self.service.balance(manual) == net

    @invariant()
    def counts_agree(self) -> None:
        if hasattr(self, "service"):
            assert self.service.count_payments() == len(self.model)

    @invariant()
    def events_agree(self) -> None:
        if not hasattr(self, "service"):
            return
        delivered: list[Any] = []
        store = self.service.store
        while True:
            now = utc_now()
            batch = store.claim_events(100, now=now, lease_until=now + timedelta(1))
            if not batch:
                break
            delivered.extend(m.event for m in batch)
            store.mark_delivered([m.event.id for m in batch])
        got = [(e.payment_id, e.type) for e in delivered]
        expected, self.events = self.events, []
        # Per payment, events arrive in the order they happened; each exactly once.
        assert sorted(got, key=str) == sorted(expected, key=str)
        for pid in {p for p, _ in expected}:
            assert [t for p, t in got if p == pid] == [t for p, t in expected if p == pid]
        for event in delivered:
            assert Decimal(event.payment["amount"]) > 0


@pytest.fixture(params=["memory", pytest.param("sqlite", marks=pytest.mark.sqlite)])
def machine_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[None]:
    runs = itertools.count()
    URLS.append(
        (lambda: "memory://")
        if request.param == "memory"
        else (lambda: f"sqlite:///{tmp_path}/run-{next(runs)}.db")
    )
    yield
    URLS.pop()


def test_service_agrees_with_the_model(machine_url: None) -> None:
    """Statuses, versions, listings, audit trails, events and the books always match the
    model."""
    runner = PaymentMachine.TestCase
    runner.settings = settings(max_examples=40, stateful_step_count=30, deadline=None)
    runner().runTest()
