"""The books through both example apps, on SQLite and PostgreSQL: a payment's journal,
balances and the trial balance, the integrity check, and who may read them."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, get_args

import pytest

import paymentorch as po
from examples.common.auth import make_token
from examples.common.models import Kind
from examples.common.settings import Settings
from tests.examples.conftest import SECRET, Client

A, B = "ABCD-12345", "WXYZ-00001"
PROBLEM = "application/problem+json"


@pytest.fixture(
    params=[
        pytest.param("sqlite", marks=pytest.mark.sqlite),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def books(
    request: pytest.FixtureRequest, make_client: Callable[..., Client], tmp_path: Path
) -> Client:
    """The app under test on a fresh database of each backend."""
    if request.param == "sqlite":
        return make_client(url=f"sqlite:///{tmp_path}/books.db")
    return make_client(url=request.getfixturevalue("empty_postgres_url"))


def customer(name: str) -> str:
    return make_token(SECRET, f"user-{name}", ["PaymentUser"], customer=name)


def _create(client: Client, token: str, who: str = A, **body: object) -> Any:
    reply = client("POST", "/api/payments", token=token,
                   json_body={"customerId": who, "amount": "10.00", **body})  # fmt: skip
    assert reply.status == 201, reply.text
    return reply.json


def _lines(entry: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    accounts = [(line["account"], line["amount"]) for line in entry["lines"]]
    return [(a["kind"], a["owner"], a["currency"], amount) for a, amount in accounts]


def _sums_to_zero(entry: dict[str, Any]) -> bool:
    return sum(Decimal(line["amount"]) for line in entry["lines"]) == 0


def test_the_journal_of_a_plan_confirmed_then_refunded(books: Client, admin: str) -> None:
    """Confirming a pay-in-4 posts one capture entry (clearing for installment 1, the
    customer's receivable for the rest, the merchant's payable for the order); a refund
    off its unpaid installments posts payable against receivable; every entry balances."""
    made = _create(books, customer(A), amount="100.01", plan={"installments": 4})
    path = f"/api/payments/{made['id']}"
    assert books("GET", f"{path}/journal", token=customer(A)).json == []  # no money moved
    confirmed = books("POST", f"{path}/confirm", token=admin, headers={"X-Correlation-ID": "c-1"})
    assert confirmed.status == 200, confirmed.text
    refund = books("POST", f"{path}/refunds", json_body={"amount": "30.00"}, token=admin)
    assert refund.status == 201, refund.text
    reply = books("GET", f"{path}/journal", token=customer(A))
    assert reply.status == 200
    capture, refunded = reply.json
    assert (capture["kind"], capture["paymentId"], capture["operationId"]) == (
        "capture",
        made["id"],
        None,
    )
    assert capture["correlationId"] == "c-1"
    assert sorted(_lines(capture)) == [
        ("clearing", "manual", "USD", "25.01"),
        ("payable", "default", "USD", "-100.01"),
        ("receivable", A, "USD", "75.00"),
    ]
    assert (refunded["kind"], refunded["operationId"]) == ("refund", refund.json["id"])
    assert sorted(_lines(refunded)) == [
        ("payable", "default", "USD", "30.00"),
        ("receivable", A, "USD", "-30.00"),
    ]
    assert all(_sums_to_zero(e) for e in reply.json)
    assert capture["at"] <= refunded["at"]
    owed = books("GET", f"{path}/plan", token=admin).json["owed"]
    query = f"kind=receivable&owner={A}&currency=USD"
    receivable = books("GET", f"/api/ledger/balances?{query}", token=admin).json
    assert receivable == {
        "account": {"kind": "receivable", "owner": A, "currency": "USD"},
        "balance": owed,
    }
    assert owed == "45.00"


def test_a_plain_payment_refunded_to_the_customer(books: Client, admin: str) -> None:
    """A confirmed payment posts clearing against payable; a refund of it goes back
    through clearing; the trial balance shows what is left, balanced."""
    made = _create(books, admin, amount="10.00")
    path = f"/api/payments/{made['id']}"
    books("POST", f"{path}/confirm", token=admin)
    books("POST", f"{path}/refunds", json_body={"amount": "4.00"}, token=admin)
    entries = books("GET", f"{path}/journal", token=admin).json
    assert [(e["kind"], sorted(_lines(e))) for e in entries] == [
        ("capture", [("clearing", "manual", "USD", "10.00"),
                     ("payable", "default", "USD", "-10.00")]),
        ("refund", [("clearing", "manual", "USD", "-4.00"),
                    ("payable", "default", "USD", "4.00")]),
    ]  # fmt: skip
    trial = books("GET", "/api/ledger/balances", token=admin).json
    assert trial == {
        "balances": [
            {"kind": "clearing", "currency": "USD", "amount": "6.00"},
            {"kind": "payable", "currency": "USD", "amount": "-6.00"},
        ],
        "balanced": True,
    }


def test_the_trial_balance_is_sorted_by_kind_then_currency(books: Client, admin: str) -> None:
    """Each kind and currency that has postings, once, sorted by kind then currency."""
    for currency, amount in (("USD", "20.00"), ("EUR", "8.00"), ("JPY", "500")):
        made = _create(books, admin, amount=amount, currency=currency, plan={"installments": 2})
        assert books("POST", f"/api/payments/{made['id']}/confirm", token=admin).status == 200
    trial = books("GET", "/api/ledger/balances", token=admin).json
    assert [(b["kind"], b["currency"], b["amount"]) for b in trial["balances"]] == [
        ("clearing", "EUR", "4.00"),
        ("clearing", "JPY", "250"),
        ("clearing", "USD", "10.00"),
        ("payable", "EUR", "-8.00"),
        ("payable", "JPY", "-500"),
        ("payable", "USD", "-20.00"),
        ("receivable", "EUR", "4.00"),
        ("receivable", "JPY", "250"),
        ("receivable", "USD", "10.00"),
    ]
    assert trial["balanced"] is True


def test_an_account_never_posted_to_is_zero(client: Client, admin: str) -> None:
    """A balance at the currency's scale, zero for an account never posted to; no
    postings at all is an empty, balanced trial balance."""
    assert client("GET", "/api/ledger/balances", token=admin).json == {
        "balances": [],
        "balanced": True,
    }
    for query, account, balance in (
        ("kind=fees&currency=USD", {"kind": "fees", "owner": "", "currency": "USD"}, "0.00"),
        ("kind=writeoffs&owner=&currency=jpy",
         {"kind": "writeoffs", "owner": "", "currency": "JPY"}, "0"),
        (f"kind=receivable&owner={B}&currency=EUR",
         {"kind": "receivable", "owner": B, "currency": "EUR"}, "0.00"),
    ):  # fmt: skip
        reply = client("GET", f"/api/ledger/balances?{query}", token=admin)
        assert reply.status == 200, reply.text
        assert reply.json == {"account": account, "balance": balance}


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("kind=assets&owner=x&currency=USD", ["kind"]),
        ("kind=fees&currency=ZZZ", ["currency"]),
        ("kind=fees&currency=XAU", ["currency"]),  # gold has no minor unit: not money here
        ("kind=fees&currency=US", ["currency"]),
        ("kind=fees", ["currency"]),
        ("currency=USD", ["kind"]),
        ("owner=ABCD-12345", ["kind", "currency"]),
        ("kind=receivable&currency=USD", ["owner"]),
        ("kind=payable&owner=&currency=USD", ["owner"]),
        ("kind=fees&owner=someone&currency=USD", ["owner"]),
        ("kind=payable&owner=" + "x" * 201 + "&currency=USD", ["owner"]),
        ("colour=red", ["colour"]),
    ],
)
def test_a_bad_balance_query_is_a_422(
    client: Client, admin: str, query: str, fields: list[str]
) -> None:
    """A bad kind, currency or owner, one without the others, or an unknown parameter is
    422 problem+json naming each field."""
    reply = client("GET", f"/api/ledger/balances?{query}", token=admin)
    assert reply.status == 422, reply.text
    assert reply.headers["content-type"].startswith(PROBLEM)
    assert [e["field"] for e in reply.json["errors"]] == fields


def test_a_customer_reads_only_its_own_journal(client: Client, admin: str) -> None:
    """Another customer's journal is 404 as if absent; an unknown id is 404, a malformed
    one 422; a user without a customer is refused."""
    theirs = _create(client, admin, B)
    mine = _create(client, customer(A))
    for made in (theirs, mine):
        assert client("POST", f"/api/payments/{made['id']}/confirm", token=admin).status == 200
    own = client("GET", f"/api/payments/{mine['id']}/journal", token=customer(A))
    assert (own.status, [e["kind"] for e in own.json]) == (200, ["capture"])
    other = client("GET", f"/api/payments/{theirs['id']}/journal", token=customer(A))
    assert (other.status, other.json["code"]) == (404, "payment_not_found")
    assert other.headers["content-type"].startswith(PROBLEM)
    assert client("GET", f"/api/payments/{theirs['id']}/journal", token=admin).status == 200
    unknown = client("GET", "/api/payments/01a21718-8031-76d8-821e-d5cf28d29097/journal",
                     token=admin)  # fmt: skip
    assert (unknown.status, unknown.json["code"]) == (404, "payment_not_found")
    bad = client("GET", "/api/payments/not-a-uuid/journal", token=admin)
    assert (bad.status, bad.json["errors"][0]["field"]) == (422, "paymentId")
    nobody = make_token(SECRET, "u-0", ["PaymentUser"])
    assert client("GET", f"/api/payments/{mine['id']}/journal", token=nobody).status == 403
    assert client("GET", f"/api/payments/{mine['id']}/journal").status == 401


@pytest.mark.parametrize("path", ["/api/ledger/balances", "/api/ledger/verify"])
def test_the_books_as_a_whole_need_an_admin(client: Client, admin: str, path: str) -> None:
    """A PaymentUser (with a customer, for its own receivable too) is 403; no token 401."""
    own = f"{path}?kind=receivable&owner={A}&currency=USD" if path.endswith("balances") else path
    for target in (path, own):
        reply = client("GET", target, token=customer(A))
        assert (reply.status, reply.json["code"]) == (403, "permission_denied")
    assert client("GET", path).status == 401
    assert client("GET", path, token=admin).status == 200


def test_the_integrity_check_finds_nothing_wrong(client: Client, admin: str) -> None:
    """After a plan confirmed and refunded and a payment cancelled, every payment checks."""
    plan = _create(client, admin, amount="40.00", plan={"installments": 4})
    client("POST", f"/api/payments/{plan['id']}/confirm", token=admin)
    client("POST", f"/api/payments/{plan['id']}/refunds", json_body={"amount": "5"}, token=admin)
    cancelled = _create(client, admin)
    client("POST", f"/api/payments/{cancelled['id']}/cancel", token=admin)
    reply = client("GET", "/api/ledger/verify", token=admin)
    assert reply.status == 200
    assert reply.json == {"ok": True, "checked": 2, "problems": []}


def test_a_posting_edited_by_hand_shows(client: Client, admin: str, settings: Settings) -> None:
    """A posting changed in place in the database: the trial balance says it no longer
    balances, and the integrity check names the payment and the books."""
    made = _create(client, admin)
    client("POST", f"/api/payments/{made['id']}/confirm", token=admin)
    with contextlib.closing(sqlite3.connect(settings.url.split(":///", 1)[1])) as db, db:
        db.execute("UPDATE paymentorch_postings SET amount = '11.00'"
                   " WHERE account_kind = 'clearing'")  # fmt: skip
    trial = client("GET", "/api/ledger/balances", token=admin).json
    assert trial["balanced"] is False
    assert trial["balances"][0] == {"kind": "clearing", "currency": "USD", "amount": "11.00"}
    report = client("GET", "/api/ledger/verify", token=admin).json
    assert report["ok"] is False
    assert {(p["paymentId"], p["check"]) for p in report["problems"]} == {
        (made["id"], "journal"),
        (None, "journal"),
    }


def test_the_document_declares_the_books(client: Client) -> None:
    """The journal, the balances and the check are in the document, with their models."""
    document = client("GET", "/openapi.json").json
    journal = document["paths"]["/api/payments/{payment_id}/journal"]["get"]
    schema = journal["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["items"] == {"$ref": "#/components/schemas/JournalEntryResponse"}
    balances = document["paths"]["/api/ledger/balances"]["get"]
    assert {p["name"] for p in balances["parameters"]} >= {"kind", "owner", "currency"}
    assert {"401", "403", "422"} <= set(balances["responses"])
    assert "/api/ledger/verify" in document["paths"]


def test_the_kinds_are_the_library_s() -> None:
    """The API's account kinds are exactly ``po.AccountKind``'s."""
    assert list(get_args(Kind)) == [k.value for k in po.AccountKind]
