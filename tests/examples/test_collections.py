"""The example API's collections, run against both apps: the aging report, the delinquent
plans and resuming collection; PaymentAdmin only, bad input named."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import pytest

import paymentorch as po
from examples.common.settings import Settings
from paymentorch.clock import ManualClock
from tests.examples.conftest import Client

ADMIN = po.Actor("ops-1", roles={po.Role.ADMIN})


def with_query(path: str, query: dict[str, str]) -> str:
    """``path`` with ``query`` as its query string."""
    return f"{path}?{urlencode(query)}"


def seed(url: str, plans: list[tuple[str, str, int]], **options: Any) -> list[str]:
    """Plans bought days ago (``(customer, amount, days ago)``, oldest first), each
    confirmed then, so their installments fell due as the days went by; their ids."""

    async def run() -> list[str]:
        clock = ManualClock(datetime.now(UTC) - timedelta(days=plans[0][2]))
        made = []
        async with await po.open_service(url, clock=clock, create_schema=True,
                                         **options) as service:  # fmt: skip
            for customer, amount, days_ago in plans:
                clock.advance(datetime.now(UTC) - timedelta(days=days_ago) - clock())
                payment = await service.create_payment(customer, amount, actor=ADMIN,
                                                       plan=po.PlanTerms())  # fmt: skip
                await service.confirm_payment(payment.id, actor=ADMIN)
                made.append(str(payment.id))
        return made

    return asyncio.run(run())


@pytest.fixture
def book(settings: Settings) -> list[str]:
    """Three plans of four installments, 14 days apart: bought 40 days ago (two
    installments due, 26 days late), 20 days ago (6 days late) and today (current)."""
    return seed(settings.url, [("ABCD-12345", "100.00", 40), ("WXYZ-67890", "60.00", 20),
                               ("ABCD-12345", "40.00", 0)])  # fmt: skip


def test_the_aging_report(book: list[str], make_client: Callable[..., Client], admin: str) -> None:
    """Running plans by bucket with their unpaid installments; `asOf` measures them later."""
    client = make_client()
    reply = client("GET", "/api/plans/aging", token=admin)
    assert reply.status == 200, reply.text
    report = reply.json
    assert set(report) == {"asOf", "buckets", "fees"}
    assert list(report["buckets"]) == ["current", "1-29", "30-59", "60-89", "90+"]
    assert report["buckets"]["current"] == {"count": 1, "outstanding": {"USD": "30.00"}}
    assert report["buckets"]["1-29"] == {"count": 2, "outstanding": {"USD": "120.00"}}
    assert report["buckets"]["30-59"] == {"count": 0, "outstanding": {}}
    assert report["fees"] == {}
    later = (datetime.now(UTC) + timedelta(days=10)).isoformat()
    reply = client("GET", with_query("/api/plans/aging", {"asOf": later}), token=admin)
    assert reply.status == 200, reply.text
    buckets = reply.json["buckets"]
    assert [buckets[b]["count"] for b in ("current", "1-29", "30-59")] == [1, 1, 1]
    assert buckets["30-59"]["outstanding"] == {"USD": "75.00"}
    assert datetime.fromisoformat(reply.json["asOf"]) == datetime.fromisoformat(later)


def test_the_delinquent_plans(
    book: list[str], make_client: Callable[..., Client], admin: str
) -> None:
    """Plans a day or more late, most days first, each with its days past due, customer
    and its oldest unpaid installment's collection; paged with a cursor."""
    client = make_client()
    reply = client("GET", "/api/plans/delinquent", token=admin)
    assert reply.status == 200, reply.text
    page = reply.json
    assert page["nextCursor"] is None
    assert [(p["paymentId"], p["daysPastDue"]) for p in page["items"]] == [
        (book[0], 26),
        (book[1], 6),
    ]
    first = page["items"][0]
    assert (first["customerId"], first["owed"], first["installment"]) == ("ABCD-12345", "75.00", 2)
    assert (first["attempts"], first["lastDecline"], first["nextAttemptAt"]) == (0, None, None)
    assert first["collectionStopped"] is False
    assert datetime.fromisoformat(first["dueAt"]) < datetime.now(UTC) - timedelta(days=26)
    assert len(first["installments"]) == 4
    one = client("GET", with_query("/api/plans/delinquent", {"limit": "1"}), token=admin).json
    assert [p["paymentId"] for p in one["items"]] == [book[0]]
    after = with_query("/api/plans/delinquent", {"limit": "1", "cursor": one["nextCursor"]})
    rest = client("GET", after, token=admin).json
    assert [p["paymentId"] for p in rest["items"]] == [book[1]]


@pytest.mark.parametrize(
    ("path", "query", "field"),
    [
        ("/api/plans/aging", {"asOf": "yesterday"}, "asOf"),
        ("/api/plans/aging", {"asOf": "2026-01-01T00:00:00"}, "asOf"),  # no zone
        ("/api/plans/aging", {"when": "2026-01-01T00:00:00Z"}, "when"),
        ("/api/plans/delinquent", {"limit": "0"}, "limit"),
        ("/api/plans/delinquent", {"limit": "many"}, "limit"),
        ("/api/plans/delinquent", {"limit": "100000"}, "limit"),
        ("/api/plans/delinquent", {"cursor": "not-a-cursor"}, "cursor"),
        ("/api/plans/delinquent", {"status": "late"}, "status"),
    ],
)
def test_bad_queries_are_named(
    client: Client, admin: str, path: str, query: dict[str, str], field: str
) -> None:
    """A bad, zone-less or unknown parameter, a limit out of range and a foreign cursor
    are each a 422 problem naming the parameter."""
    reply = client("GET", with_query(path, query), token=admin)
    assert reply.status == 422, reply.text
    assert reply.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in reply.json["errors"]] == [field]


def test_a_list_cursor_is_not_a_delinquent_cursor(client: Client, admin: str) -> None:
    """A cursor of the payments listing is refused here (422), not misread."""
    for amount in ("1.00", "2.00"):
        client("POST", "/api/payments", token=admin,
               json_body={"customerId": "ABCD-12345", "amount": amount})  # fmt: skip
    listed = client("GET", with_query("/api/payments", {"limit": "1"}), token=admin).json
    foreign = with_query("/api/plans/delinquent", {"cursor": listed["nextCursor"]})
    reply = client("GET", foreign, token=admin)
    assert (reply.status, [e["field"] for e in reply.json["errors"]]) == (422, ["cursor"])


def test_the_book_is_an_admins(client: Client, user: str) -> None:
    """A customer (even for its own plans) is 403 on the book; no token is 401."""
    for path in ("/api/plans/aging", "/api/plans/delinquent"):
        assert client("GET", path, token=user).status == 403
        assert client("GET", path).status == 401


def stopped_plan(url: str) -> str:
    """A plan bought 20 days ago whose second installment's collection was declined as
    stolen (a hard decline): its collection stopped; its id. (The worker collects every
    plan due in ``url``'s database: make it first.)"""

    async def run() -> str:
        clock = ManualClock(datetime.now(UTC) - timedelta(days=20))
        processor = po.testing.SimulatedProcessor(
            success_rate=0.0, latency=(0, 0), seed=1, decline_codes={"card_stolen": 1}
        )
        async with await po.open_service(
            url, clock=clock, create_schema=True, processor=processor,
            collections=po.CollectionPolicy(),
        ) as service:  # fmt: skip
            payment = await service.create_payment("ABCD-12345", "100.00", actor=ADMIN,
                                                   plan=po.PlanTerms())  # fmt: skip
            await service.confirm_payment(payment.id, actor=ADMIN)
            worker = po.PaymentWorker(service)
            clock.advance(timedelta(days=14))
            await worker.run_plans()
            while await worker.run_once():
                pass
            plan = await service.plan(payment.id)
            assert plan.collection_stopped, plan
            return str(payment.id)

    return asyncio.run(run())


def test_collection_is_resumed_by_an_admin(
    settings: Settings, make_client: Callable[..., Client], admin: str, user: str
) -> None:
    """A plan whose collection stopped after a hard decline says so, with the decline;
    an admin resumes its collection (a customer may not), and the plan says so."""
    pid = stopped_plan(settings.url)
    client = make_client()
    plan = client("GET", f"/api/payments/{pid}/plan", token=admin).json
    assert plan["collectionStopped"] is True
    assert (plan["installments"][1]["lastDecline"], plan["installments"][1]["attempts"]) == (
        "card_stolen",
        1,
    )
    path = f"/api/payments/{pid}/plan/resume-collection"
    assert client("POST", path, token=user).status == 403
    for key in (" ", "k" * 256):
        bad = client("POST", path, token=admin, headers={"Idempotency-Key": key})
        assert (bad.status, [e["field"] for e in bad.json["errors"]]) == (422, ["Idempotency-Key"])
    offered = client("GET", f"/api/payments/{pid}", token=admin).json["allowedActions"]
    assert "resume_collection" in offered
    assert client("GET", f"/api/payments/{pid}/plan", token=admin).json["collectionStopped"]
    done = client("POST", path, token=admin, headers={"Idempotency-Key": "resume-1"})
    assert done.status == 200, done.text
    assert done.json["collectionStopped"] is False
    again = client("POST", path, token=admin, headers={"Idempotency-Key": "resume-1"})
    assert (again.status, again.json["code"]) == (409, "invalid_transition")  # it runs
    trail = client("GET", f"/api/payments/{pid}/audit", token=admin).json
    assert trail[-1]["actorId"] == "ops-3"
    missing = "/api/payments/01890a5d-ac96-774b-bcce-b302099a8057/plan/resume-collection"
    assert client("POST", missing, token=admin).status == 404


def test_amounts_stay_exact(
    book: list[str], make_client: Callable[..., Client], admin: str
) -> None:
    """The report's amounts are exact decimal strings, summing as the plans do."""
    client = make_client()
    report = client("GET", "/api/plans/aging", token=admin).json
    total = sum(Decimal(b["outstanding"].get("USD", "0")) for b in report["buckets"].values())
    assert total == Decimal("150.00")
