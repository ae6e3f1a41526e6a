"""Broker sinks against the machine's NATS and RabbitMQ: a relay process killed twice and
the broker cut for seconds lose no event, and keep each payment's order."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest

import paymentorch as po
from paymentorch.domain import NewPayment
from tests import brokers
from tests.proxy import TcpProxy

ADMIN = po.Actor("admin-1", roles={po.Role.ADMIN})
ROUNDS = 10
PAYMENTS_PER_ROUND = 125  # four events each: 5,000 in all


async def _make_events(service: po.PaymentService, count: int) -> list[str]:
    """``count`` payments, each created, confirmed and refunded twice: four events."""
    items = [NewPayment(f"CUST-{i % 50:05d}", "10.00") for i in range(count)]
    created = await service.create_payments(items, actor=ADMIN)
    await service.confirm_payments([p.id for p in created], actor=ADMIN)
    for payment in created:
        await service.refund_payment(payment.id, "1.00", actor=ADMIN)
        await service.refund_payment(payment.id, "2.00", actor=ADMIN)
    return [str(p.id) for p in created]


def _relay(url: str, sink: str, log: Path) -> subprocess.Popen[bytes]:
    args = ["--lease", "2", "--poll", "0.1", "--batch-size", "100"]
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "paymentorch.cli", "relay", url, "--sink", sink, *args],
            stdout=output,
            stderr=subprocess.STDOUT,
        )


async def _connected(proxy: TcpProxy) -> None:
    deadline = time.monotonic() + 30
    while not proxy.connections:
        assert time.monotonic() < deadline, "the relay never connected to the broker"
        await asyncio.sleep(0.05)  # polling the relay's progress


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:]


def _troubles(log: Path) -> int:
    """How often a relay's sink call failed or its client lost the broker (logged)."""
    text = log.read_text(errors="replace")
    return text.count("event sink failed") + text.count("NATS: disconnected")


async def _drain(service: po.PaymentService, log: Path) -> None:
    deadline = time.monotonic() + 120
    while (stats := await service.store.outbox_stats()).pending or stats.parked:
        assert not stats.parked, f"events parked: {_tail(log)}"
        assert time.monotonic() < deadline, f"{stats}: {_tail(log)}"
        await asyncio.sleep(0.2)  # polling the relay's progress, not waiting out a race


async def _run_relay_through_trouble(
    service: po.PaymentService, url: str, sink: str, proxy: TcpProxy, log: Path
) -> tuple[int, list[str]]:
    """Make 5,000 events while a relay process delivers them: SIGKILL it after rounds 3
    and 6 (it is restarted), cut the broker for 3 s after round 8. Return the kills and
    the payments."""
    relay = _relay(url, sink, log)
    kills = 0
    payments: list[str] = []
    try:
        for round_ in range(ROUNDS):
            payments += await _make_events(service, PAYMENTS_PER_ROUND)
            if round_ in (2, 5):
                relay.send_signal(signal.SIGKILL)
                assert relay.wait(timeout=10) == -signal.SIGKILL
                kills += 1
                relay = _relay(url, sink, log)
            if round_ == 7:
                await _connected(proxy)  # a cut before the restarted relay connects is no cut
                proxy.cut(3)
        await _drain(service, log)
    finally:
        relay.terminate()
        relay.wait(timeout=10)
    return kills, payments


def _check(received: list[dict[str, Any]], payments: list[str]) -> dict[str, int]:
    """Nothing lost: every payment's four events arrived, first arrivals in the order
    they happened; the message id is the event id."""
    assert all(m["id"] == m["message_id"] for m in received)
    arrived: dict[str, list[tuple[int, str]]] = defaultdict(list)
    seen: set[str] = set()
    for message in received:  # a repeat is the consumer's to drop, by message id
        if message["message_id"] not in seen:
            seen.add(message["message_id"])
            arrived[message["payment_id"]].append((message["payment"]["version"], message["type"]))
    expected = [
        (1, "payment.created"),
        (2, "payment.confirmed"),
        (3, "payment.refunded"),
        (4, "payment.refunded"),
    ]
    wrong = {p: arrived.get(p) for p in payments if arrived.get(p) != expected}
    assert not wrong, (
        f"{len(wrong)} payments lost events or order, such as {next(iter(wrong.items()))}"
    )
    assert set(arrived) == set(payments)
    return {"received": len(received), "repeats": len(received) - len(seen)}


@pytest.fixture
def database(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/relay.db"


async def test_nats_sink_loses_nothing_and_stores_each_event_once(
    database: str, tmp_path: Path
) -> None:
    """5,000 events; the relay killed twice and NATS cut for 3 s: every event is in the
    stream exactly once (the message id de-duplicates what a killed relay re-sent)."""
    brokers.require("NATS", brokers.NATS)
    name = f"T{uuid.uuid4().hex[:12]}"
    prefix = f"t{name[1:]}"
    log = tmp_path / "relay.log"
    async with await po.open_service(database, create_schema=True) as service:
        with TcpProxy(brokers.NATS) as proxy:
            sink = f"nats://127.0.0.1:{proxy.port}?stream={name}&subject_prefix={prefix}"
            kills, payments = await _run_relay_through_trouble(service, database, sink, proxy, log)
    received = await brokers.read_nats(brokers.NATS[1], name, prefix)
    figures = _check(received, payments) | {"kills": kills, "troubles": _troubles(log)}
    assert figures["received"] == 5000
    assert figures["repeats"] == 0
    assert kills == 2
    assert figures["troubles"] > 0, "the cut went unnoticed"
    print(f"NATS: {figures}")


class CutOnStreamInfo(TcpProxy):
    """Cuts every connection for ``seconds`` when a client first asks for a stream's info,
    the first thing a NATS sink does on its new connection."""

    def __init__(self, target: tuple[str, int], seconds: float) -> None:
        self.seconds = seconds
        self.cuts = 0
        super().__init__(target)

    def _asked(self, data: bytes) -> None:
        if b"$JS.API.STREAM.INFO." in data and not self.cuts:
            self.cuts += 1
            self.cut(self.seconds)


async def test_a_nats_cut_while_the_sink_sets_up_is_logged_and_outlived(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A connection lost before the sink's first call returns is a disconnect like any
    other: logged. The call that lost its request raises (the relay keeps the batch);
    the next one stores the event."""
    from nats.errors import TimeoutError as NatsTimeout

    from paymentorch.sinks import NatsSink

    brokers.require("NATS", brokers.NATS)
    name = f"T{uuid.uuid4().hex[:12]}"
    prefix = f"t{name[1:]}"
    async with await po.open_service("memory://") as service:
        payment = await service.create_payment("CUST-00001", "10.00", actor=ADMIN)
        now = service.clock()
        events = [m.event for m in await service.store.claim_events(10, now=now, lease_until=now)]
    # Refused for less than the client waits before it reconnects: one clean reconnect.
    with CutOnStreamInfo(brokers.NATS, seconds=0.2) as proxy:
        sink = NatsSink(
            f"nats://127.0.0.1:{proxy.port}", stream=name, subject_prefix=prefix, timeout=1
        )
        try:
            with caplog.at_level("WARNING", logger="paymentorch.sinks"):
                with pytest.raises(NatsTimeout):
                    await sink(events)
                await sink(events)
        finally:
            await sink.aclose()
    assert proxy.cuts == 1
    assert caplog.messages.count("NATS: disconnected; reconnecting") == 1
    received = await brokers.read_nats(brokers.NATS[1], name, prefix)
    assert [(m["payment_id"], m["type"]) for m in received] == [
        (str(payment.id), "payment.created")
    ]


async def test_rabbitmq_sink_loses_nothing_and_keeps_order(database: str, tmp_path: Path) -> None:
    """5,000 events; the relay killed twice and RabbitMQ cut for 3 s: every event reaches
    the queue (a batch re-sent after a kill arrives twice, with the same message id)."""
    brokers.require("RabbitMQ", brokers.RABBITMQ)
    exchange = f"t-{uuid.uuid4().hex[:12]}"
    log = tmp_path / "relay.log"
    opened = await brokers.rabbitmq_queue("amqp://guest:guest@127.0.0.1:5672/", exchange)
    async with await po.open_service(database, create_schema=True) as service:
        with TcpProxy(brokers.RABBITMQ) as proxy:
            sink = f"amqp://guest:guest@127.0.0.1:{proxy.port}/?exchange={exchange}"
            kills, payments = await _run_relay_through_trouble(service, database, sink, proxy, log)
    received = await brokers.read_rabbitmq(opened, exchange)
    figures = _check(received, payments) | {"kills": kills, "troubles": _troubles(log)}
    assert kills == 2
    assert figures["troubles"] > 0, "the cut went unnoticed"
    print(f"RabbitMQ: {figures}")


def test_sink_from_url_takes_its_options_from_the_query() -> None:
    """Stream, prefix and exchange come out of the URL; the rest stays for the client."""
    from paymentorch.sinks import NatsSink, RabbitMQSink, sink_from_url

    nats = sink_from_url("nats://127.0.0.1:4222?stream=ORDERS&subject_prefix=orders")
    assert isinstance(nats, NatsSink)
    assert (nats.url, nats.stream, nats.subject_prefix) == (
        "nats://127.0.0.1:4222",
        "ORDERS",
        "orders",
    )
    rabbit = sink_from_url("amqp://guest:guest@127.0.0.1:5672/?exchange=pay&heartbeat=30")
    assert isinstance(rabbit, RabbitMQSink)
    assert rabbit.exchange_name == "pay"
    assert rabbit.url == "amqp://guest:guest@127.0.0.1:5672/?heartbeat=30"
    with pytest.raises(ValueError, match="no event sink"):
        sink_from_url("kafka://127.0.0.1:9092")
    with pytest.raises(ValueError, match="no option exchange"):
        sink_from_url("nats://127.0.0.1:4222?exchange=x")


class Collected:
    """A sink for ``paymentorch relay --sink tests.test_sinks:Collected``."""

    events: ClassVar[list[po.PaymentEvent]] = []

    async def __call__(self, events: Sequence[po.PaymentEvent]) -> None:
        Collected.events.extend(events)


async def test_relay_command_delivers_to_a_named_sink(database: str) -> None:
    """``paymentorch relay URL --sink module:name --once`` delivers what is pending."""
    from paymentorch.cli import main

    async with await po.open_service(database, create_schema=True) as service:
        payments = await _make_events(service, 3)
    Collected.events.clear()
    code = await asyncio.to_thread(
        main, ["relay", database, "--sink", "tests.test_sinks:Collected", "--once"]
    )
    assert code == 0
    assert sorted(str(e.payment_id) for e in Collected.events) == sorted(payments * 4)
    bad = await asyncio.to_thread(main, ["relay", database, "--sink", "nowhere"])
    assert bad == 2
