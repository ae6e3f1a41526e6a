"""Processors: the simulated one, the router's failover rules and its circuit breakers."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

import paymentorch as po
from paymentorch.clock import ManualClock, utc_now
from paymentorch.domain import OperationKind, uuid7
from paymentorch.testing import SimulatedProcessor
from paymentorch.testing.processor_contract import *  # noqa: F403
from paymentorch.testing.processor_contract import ProcessorUnderTest


class Scripted:
    """A processor that answers from a script, and counts its calls."""

    capabilities = po.ProcessorCapabilities(lookup=True)

    def __init__(self, name: str, *answers: po.Outcome | Exception) -> None:
        self.name = name
        self.answers = list(answers)
        self.calls = 0

    async def execute(self, request: po.ProcessorRequest) -> po.ProcessorResult:
        self.calls += 1
        answer = self.answers[min(self.calls, len(self.answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return po.ProcessorResult(answer, reference=f"{self.name}-{self.calls}")

    async def lookup(self, request: po.ProcessorRequest) -> po.ProcessorResult:
        return po.ProcessorResult(po.Outcome.NOT_FOUND)


def _request(processor: str | None = None) -> po.ProcessorRequest:
    return po.ProcessorRequest(
        operation_id=uuid7(),
        kind=OperationKind.CHARGE,
        payment_id=uuid7(),
        amount=Decimal("5.00"),
        currency="USD",
        processor=processor,
    )


@pytest.fixture(params=["simulated", "router"])
def processor_under_test(request: pytest.FixtureRequest) -> ProcessorUnderTest:
    """The conformance kit runs on the simulated processor, alone and behind a router."""
    simulated = SimulatedProcessor(success_rate=0.7, latency=(0, 0.002), seed=7)
    if request.param == "simulated":
        return ProcessorUnderTest(simulated, simulated.ledger.get)
    return ProcessorUnderTest(po.Router([simulated]), lambda op: simulated.ledger.get(op, 0))


async def test_failover_only_on_not_attempted() -> None:
    """The router moves on after NOT_ATTEMPTED, never after DECLINED or UNKNOWN."""
    for answer, tried_second in (
        (po.Outcome.NOT_ATTEMPTED, True),
        (po.Outcome.DECLINED, False),
        (po.Outcome.UNKNOWN, False),
        (TimeoutError("late"), False),
    ):
        first = Scripted("a", answer)
        second = Scripted("b", po.Outcome.SUCCEEDED)
        result = await po.Router([first, second]).execute(_request())
        assert (second.calls == 1) is tried_second
        assert result.processor == ("b" if tried_second else "a")
        if isinstance(answer, Exception):
            assert result.outcome is po.Outcome.UNKNOWN  # an exception is never a decline


async def test_follow_ups_and_lookups_go_to_the_original() -> None:
    """A request naming its processor goes there only, even when another would answer."""
    a, b = Scripted("a", po.Outcome.SUCCEEDED), Scripted("b", po.Outcome.SUCCEEDED)
    router = po.Router([a, b])
    result = await router.execute(_request(processor="b"))
    assert (result.processor, a.calls, b.calls) == ("b", 0, 1)
    assert (await router.lookup(_request(processor="a"))).processor == "a"
    with pytest.raises(LookupError):
        await router.lookup(_request(processor="nobody"))


async def test_choose_orders_the_processors() -> None:
    """``choose`` decides which processors a first request tries, and in which order."""
    a, b = Scripted("a", po.Outcome.SUCCEEDED), Scripted("b", po.Outcome.SUCCEEDED)
    router = po.Router([a, b], choose=lambda request: [b, a])
    assert (await router.execute(_request())).processor == "b"


async def test_breaker_opens_then_half_opens_on_the_clock() -> None:
    """After 3 troubles the circuit opens; after the cool-down one trial goes through."""
    now = [utc_now()]
    flaky = Scripted("a", po.Outcome.NOT_ATTEMPTED)
    backup = Scripted("b", po.Outcome.SUCCEEDED)
    router = po.Router(
        [flaky, backup],
        breaker_threshold=3,
        breaker_cooldown=timedelta(seconds=30),
        clock=lambda: now[0],
    )
    for _ in range(3):
        await router.execute(_request())
    assert router.breakers["a"].state == "open"
    await router.execute(_request())
    assert flaky.calls == 3  # open: not even tried
    now[0] += timedelta(seconds=31)
    flaky.answers = [po.Outcome.SUCCEEDED]
    result = await router.execute(_request())
    assert (result.processor, router.breakers["a"].state) == ("a", "closed")


def test_a_router_needs_distinct_processors() -> None:
    """No processors, or two with one name, is refused when the router is built."""
    with pytest.raises(ValueError, match="at least one"):
        po.Router([])
    with pytest.raises(ValueError, match="differ"):
        po.Router([Scripted("a"), Scripted("a")])


async def test_simulated_timeouts_keep_an_honest_ledger() -> None:
    """Timeouts raise; the ledger counts exactly the ones that moved money, once each."""
    simulated = SimulatedProcessor(
        success_rate=1.0, latency=(0, 0), timeout_rate=1.0, executed_on_timeout=0.5, seed=3
    )
    requests = [_request() for _ in range(200)]
    for request in requests:
        with pytest.raises(TimeoutError):
            await simulated.execute(request)
    moved = [r for r in requests if simulated.ledger.get(r.operation_id)]
    assert 60 < len(moved) < 140  # about half, with this seed
    assert all(simulated.ledger[r.operation_id] == 1 for r in moved)
    for request in requests:
        found = await simulated.lookup(request)
        expected = po.Outcome.SUCCEEDED if request in moved else po.Outcome.NOT_FOUND
        assert found.outcome is expected
    simulated.refusing = True
    assert (await simulated.execute(_request())).outcome is po.Outcome.NOT_ATTEMPTED


async def test_simulated_declines_carry_weighted_codes() -> None:
    """``decline_codes`` weighs the codes declines carry; the same seed, the same codes;
    a bad table is refused."""

    async def codes(seed: int) -> list[str | None]:
        simulated = SimulatedProcessor(
            success_rate=0.0, latency=(0, 0), seed=seed,
            decline_codes={"insufficient_funds": 3, "card_stolen": 1},
        )  # fmt: skip
        return [(await simulated.execute(_request())).code for _ in range(400)]

    first = await codes(5)
    assert first == await codes(5)
    assert set(first) == {"insufficient_funds", "card_stolen"}
    assert 60 < first.count("card_stolen") < 140  # about a quarter
    plain = SimulatedProcessor(success_rate=0.0, latency=(0, 0), seed=5)
    assert (await plain.execute(_request())).code == "declined"
    for bad in ({}, {"": 1}, {"x": -1}, {"x": 0}):
        with pytest.raises(ValueError, match="decline_codes"):
            SimulatedProcessor(decline_codes=bad)


async def test_no_processor_call_outlives_the_workers_lease() -> None:
    """A call still under way when the lease runs out is abandoned (unknown, looked up
    later), and a call whose lease ran out before it started is never made."""
    slow = SimulatedProcessor(success_rate=1.0, latency=(2.0, 2.0), seed=3)
    admin = po.Actor("ops", roles={po.Role.ADMIN})
    async with await po.open_service("memory://", processor=slow) as service:
        first = await service.create_payment("ABCD-12345", "5.00", actor=admin,
                                             capture_method="automatic")  # fmt: skip
        worker = po.PaymentWorker(service, lease=timedelta(seconds=0.2))
        await worker.run_once()  # gives up after 0.2 s, not 2 s
        (op,) = await service.operations(first.id)
        assert op.status is po.OperationStatus.UNKNOWN
        assert "TimeoutError" in (op.error or "")
        second = await service.create_payment("ABCD-12345", "6.00", actor=admin,
                                              capture_method="automatic")  # fmt: skip
        (pending,) = await service.operations(second.id)
        spent = utc_now() - timedelta(seconds=1)
        await worker._work(pending, spent)
        assert pending.id not in slow.answers()  # never sent
        assert (await service.operations(second.id))[0].status is po.OperationStatus.PENDING


async def test_a_call_cut_short_inside_a_router_names_no_processor() -> None:
    """A router's call abandoned at the lease names no processor (it did not answer, so
    nobody knows which one took it): the lookup then asks every processor, and finds the
    one that did."""
    slow = SimulatedProcessor(success_rate=1.0, latency=(2.0, 2.0), seed=3, name="slow")
    idle = SimulatedProcessor(success_rate=1.0, latency=(0, 0), seed=4, name="idle")
    admin = po.Actor("ops", roles={po.Role.ADMIN})
    clock = ManualClock(utc_now())
    async with await po.open_service(
        "memory://", processor=po.Router([slow, idle]), clock=clock
    ) as service:
        payment = await service.create_payment("ABCD-12345", "5.00", actor=admin,
                                               capture_method="automatic")  # fmt: skip
        worker = po.PaymentWorker(service, lease=timedelta(seconds=0.2))
        await worker.run_once()  # slow took it, and the worker gave up waiting
        (op,) = await service.operations(payment.id)
        assert (op.status, op.processor) == (po.OperationStatus.UNKNOWN, None)
        clock.advance(timedelta(seconds=5))
        await po.PaymentWorker(service).run_once()  # the lookup finds it at slow
        (op,) = await service.operations(payment.id)
        assert (op.status, op.processor) == (po.OperationStatus.SUCCEEDED, "slow")
        assert op.id not in idle.ledger
