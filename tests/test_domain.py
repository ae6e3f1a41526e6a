"""The pure domain: transitions, money, validation rules, errors, ids and cursors."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType

import attrs
import pytest

import paymentorch as po
from paymentorch.domain import (
    FieldError,
    NewPayment,
    Payment,
    PaymentStatus,
    cancel,
    confirm,
    fail,
    record_change,
    transition,
    uuid7,
)
from paymentorch.domain.consequences import _amended
from paymentorch.domain.cursor import decode_cursor, encode_cursor
from paymentorch.domain.money import currency_exponent
from paymentorch.domain.payment import _moved
from paymentorch.domain.records import Change

NOW = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def pending() -> Payment:
    return Payment(
        id=uuid7(),
        customer_id="ABCD-12345",
        amount=Decimal("10.00"),
        currency="USD",
        status=PaymentStatus.PENDING,
        created_at=NOW,
        updated_at=NOW,
        metadata={"order": "1"},
    )


@pytest.mark.parametrize(
    ("action", "status"),
    [("confirm", "Confirmed"), ("fail", "Failed"), ("cancel", "Cancelled")],
)
def test_pending_moves_once(action: str, status: str) -> None:
    """Each action takes a Pending payment to its status, bumping version and time."""
    before = pending()
    later = NOW + timedelta(seconds=1)
    after = transition(before, action, at=later, reason="why")
    assert (after.status.value, after.version, after.updated_at) == (status, 2, later)
    assert (after.id, after.amount, after.created_at) == (before.id, before.amount, NOW)
    assert after.failure_reason == ("why" if action == "fail" else None)
    assert before.status is PaymentStatus.PENDING  # values are never changed in place


@pytest.mark.parametrize("final", ["confirm", "fail", "cancel"])
@pytest.mark.parametrize("action", ["confirm", "fail", "cancel"])
def test_every_forbidden_transition(final: str, action: str) -> None:
    """No action applies to a payment that has left Pending."""
    done = transition(pending(), final, at=NOW, reason="r")
    with pytest.raises(po.InvalidTransition) as caught:
        transition(done, action, at=NOW, reason="r")
    assert (caught.value.payment_id, caught.value.status, caught.value.action) == (
        done.id,
        done.status,
        action,
    )
    assert str(done.id) in str(caught.value)
    assert done.status.value in str(caught.value)


def test_named_transitions() -> None:
    """confirm, fail and cancel are the three named pure transitions."""
    assert confirm(pending(), at=NOW).status is PaymentStatus.CONFIRMED
    assert fail(pending(), at=NOW, reason="x").failure_reason == "x"
    assert cancel(pending(), at=NOW).status is PaymentStatus.CANCELLED


def test_to_dict_is_json_safe_and_exact() -> None:
    """to_dict gives strings for ids, exact amounts and ISO times."""
    payment = pending()
    data = payment.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["amount"] == "10.00"
    assert data["id"] == str(payment.id)
    assert data["created_at"] == "2026-01-02T03:04:05.678901+00:00"
    assert data["metadata"] == {"order": "1"}


def test_metadata_is_read_only() -> None:
    """A payment's metadata cannot be changed through the payment."""
    payment = pending()
    with pytest.raises(TypeError):
        payment.metadata["order"] = "2"  # type: ignore[index]


def test_record_change_builds_entry_and_event() -> None:
    """A change's audit entry and event describe the same transition."""
    before = pending()
    after = confirm(before, at=NOW)
    change = record_change(
        after, "confirm", from_status=before.status, actor_id="ops", correlation_id="c-1"
    )
    assert change.audit.action == "confirmed"
    assert (change.audit.from_status, change.audit.to_status) == (
        PaymentStatus.PENDING,
        PaymentStatus.CONFIRMED,
    )
    assert change.event.type == "payment.confirmed"
    assert change.event.payment == after.to_dict()
    assert change.event.correlation_id == change.audit.correlation_id == "c-1"


def test_copies_made_by_hand_keep_every_field() -> None:
    """The hot path copies a payment and a change with their constructors, not
    ``attrs.evolve``: every field, one added later too, is carried over."""
    fields = {f.name: object() for f in attrs.fields(Payment)}
    payment = Payment(**fields | {"version": 1, "metadata": MappingProxyType({})})
    status, at, reason, captured = object(), object(), object(), object()
    assert _moved(payment, status, at, reason, captured) == attrs.evolve(  # type: ignore[arg-type]
        payment, status=status, updated_at=at, version=2, failure_reason=reason,
        captured_amount=captured,
    )  # fmt: skip
    change = Change(**{f.name: object() for f in attrs.fields(Change)})
    exposure, limit, journal = object(), object(), object()
    assert _amended(change, exposure, limit, journal) == attrs.evolve(  # type: ignore[arg-type]
        change, exposure=exposure, credit_limit=limit, journal=journal
    )


def test_currency_exponents_come_from_iso_4217() -> None:
    """Exponents are the standard's; codes without a minor unit are not payable."""
    assert currency_exponent("USD") == 2
    assert currency_exponent("JPY") == 0
    assert currency_exponent("KWD") == 3
    assert currency_exponent("XAU") is None
    assert currency_exponent("ZZZ") is None


POLICY = po.ValidationPolicy()


def problems(**fields: object) -> dict[str, str]:
    new = NewPayment(**{"customer_id": "ABCD-12345", "amount": "1.00", **fields})  # type: ignore[arg-type]
    valid, errors = POLICY.check_payment(new, default_currency="USD")
    assert (valid is None) == bool(errors)
    return {e.field: e.code for e in errors}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"amount": "10.005"}, {"amount": "too_many_decimals"}),
        ({"amount": "1.5", "currency": "JPY"}, {"amount": "too_many_decimals"}),
        ({"amount": 0.1}, {"amount": "type"}),
        ({"amount": True}, {"amount": "type"}),
        ({"amount": "NaN"}, {"amount": "type"}),
        ({"amount": Decimal("Infinity")}, {"amount": "type"}),
        ({"amount": "-1"}, {"amount": "too_small"}),
        ({"amount": 0}, {"amount": "too_small"}),
        ({"amount": "1000000.01"}, {"amount": "too_large"}),
        ({"amount": "1e3"}, {}),
        ({"amount": "12,50"}, {"amount": "type"}),
        ({"currency": "ABC"}, {"currency": "unknown"}),
        ({"currency": "XAU"}, {"currency": "unknown"}),
        ({"customer_id": "abcd-12345"}, {"customer_id": "pattern"}),
        ({"customer_id": "ABCD-١٢٣٤٥"}, {"customer_id": "pattern"}),
        ({"customer_id": "ABCD-12345\n"}, {"customer_id": "control"}),
        ({"customer_id": "ABCD-12345' OR 1=1--"}, {"customer_id": "pattern"}),
        ({"customer_id": ""}, {"customer_id": "length"}),
        ({"idempotency_key": "é"}, {"idempotency_key": "charset"}),
        ({"idempotency_key": "k" * 256}, {"idempotency_key": "length"}),
        ({"metadata": {str(i): "v" for i in range(21)}}, {"metadata": "too_many"}),
        ({"metadata": {"k" * 41: "v"}}, {"metadata": "key"}),
        ({"metadata": {"k": "v" * 501}}, {"metadata.k": "too_long"}),
        ({"metadata": {"k": "a\x00b"}}, {"metadata.k": "control"}),
    ],
)
def test_validation_rules(fields: dict[str, object], expected: dict[str, str]) -> None:
    """Each rule of the seed design, with a stable code per broken rule."""
    assert problems(**fields) == expected


def test_no_silent_rounding_but_exact_normalisation() -> None:
    """JPY 1000 and USD 10.5 are accepted and quantized without changing their value."""
    jpy = POLICY.validate_payment(NewPayment("ABCD-12345", "1000", "jpy"), default_currency="USD")
    assert (jpy.amount, jpy.currency) == (Decimal("1000"), "JPY")
    usd = POLICY.validate_payment(NewPayment("ABCD-12345", "10.5"), default_currency="USD")
    assert str(usd.amount) == "10.50"


def test_one_error_lists_every_problem() -> None:
    """A request with several problems gets one ValidationError naming each field."""
    with pytest.raises(po.ValidationError) as caught:
        POLICY.validate_payment(
            NewPayment("bad", 1.5, "nope", "é", {"k": 1}),  # type: ignore[arg-type, dict-item]
            default_currency="USD",
        )
    fields = [e.field for e in caught.value.errors]
    assert fields == ["customer_id", "currency", "amount", "idempotency_key", "metadata.k"]
    assert isinstance(caught.value, ValueError)
    for field in fields:
        assert field in str(caught.value)


def test_error_codes_are_stable() -> None:
    """Every error has a stable code; the two-parent errors can be caught either way."""
    pid = uuid7()
    assert po.ValidationError([FieldError("a", "b", "c")]).code == "validation_error"
    assert isinstance(po.PaymentNotFound(pid), LookupError)
    assert po.PaymentNotFound(pid).code == "payment_not_found"
    assert po.InvalidTransition(pid, PaymentStatus.FAILED, "confirm").code == "invalid_transition"
    assert po.IdempotencyConflict("k").code == "idempotency_conflict"
    assert po.PermissionDenied("u", "confirm").code == "permission_denied"
    assert po.StoreUnavailable("down").code == "store_unavailable"
    assert issubclass(po.StoreUnavailable, po.PaymentError)


def test_role_policy() -> None:
    """Users may create; only admins change payments; the system actor may do anything."""
    policy = po.RolePolicy()
    user = po.Actor("u", roles={"PaymentUser"})
    admin = po.Actor("a", roles={po.Role.ADMIN})
    policy.check(user, "create")
    policy.check(admin, "create")
    policy.check(admin, "confirm")
    policy.check(po.Actor.system(), "create_payments")
    with pytest.raises(po.PermissionDenied) as caught:
        policy.check(user, "confirm")
    assert (caught.value.actor_id, caught.value.action) == ("u", "confirm")
    with pytest.raises(po.PermissionDenied):
        policy.check(po.Actor("nobody"), "create")


def test_uuid7_is_time_ordered() -> None:
    """Ids are version 7 and strictly increasing within a process."""
    ids = [uuid7() for _ in range(10_000)]
    assert all(i.version == 7 for i in ids)
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_cursor_round_trip_and_garbage() -> None:
    """A cursor decodes to its position; anything else is a cursor error."""
    payment = pending()
    assert decode_cursor(encode_cursor(payment)) == (payment.created_at, payment.id)
    for junk in ["", "x", "bm9wZQ", "MXwyMDI2fHh5eg", 42, "é" * 3, "a" * 500]:
        result = decode_cursor(junk)
        assert isinstance(result, FieldError)
        assert result.field == "cursor"


def test_uuid7_differs_in_a_forked_child() -> None:
    """A forked child does not reuse its parent's buffered random bits."""
    import os

    uuid7()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, uuid7().bytes)
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 16)
    os.close(read)
    os.close(write)
    assert child != uuid7().bytes
    assert child[8:] != uuid7().bytes[8:]


ALLOWED = {
    ("Pending", "confirm"): "Confirmed",
    ("Pending", "authorize"): "Authorized",
    ("Pending", "fail"): "Failed",
    ("Pending", "cancel"): "Cancelled",
    ("Authorized", "capture"): "Confirmed",
    ("Authorized", "fail"): "Failed",
    ("Authorized", "cancel"): "Cancelled",
    ("Confirmed", "refund"): "Refunded",
}


def _in(status: str) -> Payment:
    """A 10.00 USD payment brought to ``status`` by the transitions themselves."""
    payment = pending()
    path = {
        "Pending": [],
        "Authorized": ["authorize"],
        "Confirmed": ["confirm"],
        "Failed": ["fail"],
        "Cancelled": ["cancel"],
        "Refunded": ["confirm", "refund"],
    }[status]
    for step in path:
        payment = (
            po.domain.refund(payment, payment.refundable, at=NOW)
            if step == "refund"
            else transition(payment, step, at=NOW, reason="r")
        )
    assert payment.status.value == status
    return payment


def _do(payment: Payment, action: str) -> Payment:
    if action == "refund":
        return po.domain.refund(payment, payment.refundable, at=NOW)
    return transition(payment, action, at=NOW, reason="r")


@pytest.mark.parametrize("status", [s.value for s in PaymentStatus])
@pytest.mark.parametrize("action", ["confirm", "authorize", "capture", "fail", "cancel", "refund"])
def test_every_pair_of_status_and_action(status: str, action: str) -> None:
    """Each allowed pair reaches its status; every other pair is InvalidTransition."""
    before = _in(status)
    if (status, action) in ALLOWED:
        after = _do(before, action)
        assert after.status.value == ALLOWED[(status, action)]
        assert after.version == before.version + 1
        assert Decimal(0) <= after.refunded_amount <= after.captured_amount <= after.amount
    else:
        with pytest.raises(po.InvalidTransition) as caught:
            _do(before, action)
        assert (caught.value.status.value, caught.value.action) == (status, action)


def test_capture_takes_part_and_refunds_add_up_exactly() -> None:
    """A partial capture keeps the amount; refunds reduce what is refundable, to the cent."""
    authorized = transition(pending(), "authorize", at=NOW)
    captured = transition(authorized, "capture", at=NOW, amount=Decimal("7.50"))
    assert (captured.amount, captured.captured_amount) == (Decimal("10.00"), Decimal("7.50"))
    with pytest.raises(po.AmountExceeded) as caught:
        transition(authorized, "capture", at=NOW, amount=Decimal("10.01"))
    assert (caught.value.requested, caught.value.available) == (Decimal("10.01"), Decimal("10.00"))
    partly = po.domain.refund(captured, Decimal("2.50"), at=NOW)
    assert (partly.status, partly.refundable) == (PaymentStatus.CONFIRMED, Decimal("5.00"))
    with pytest.raises(po.AmountExceeded):
        po.domain.refund(partly, Decimal("5.01"), at=NOW)
    done = po.domain.refund(partly, Decimal("5.00"), at=NOW)
    assert (done.status, done.refunded_amount) == (PaymentStatus.REFUNDED, Decimal("7.50"))
    assert done.to_dict()["captured_amount"] == "7.50"
    assert pending().to_dict()["refunded_amount"] == "0.00"


def test_max_amount_by_currency() -> None:
    """``max_amount`` takes a mapping by currency; a currency it does not name keeps the
    default; capture and refund amounts are held to it too."""
    policy = po.ValidationPolicy(max_amount={"JPY": Decimal(50_000_000)})
    assert policy.max_amount_for("JPY") == 50_000_000
    assert policy.max_amount_for("USD") == 1_000_000
    assert policy.check_money("60000000", "JPY")[1][0].code == "too_large"
    assert policy.check_money("1E+30", "USD")[1][0].code == "too_large"
    with pytest.raises(po.ValidationError):
        po.ValidationPolicy(max_amount={"USD": -1})  # type: ignore[dict-item]


def test_the_customer_id_error_says_how_to_accept_your_own() -> None:
    """The pattern error names the pattern and the setting that changes it."""
    _, errors = po.ValidationPolicy().check_payment(
        po.NewPayment("cust_42", "1.00"), default_currency="USD"
    )
    assert "ValidationPolicy(customer_id_pattern=...)" in errors[0].message
