"""The example's processor over real HTTP: the simulated processor service, the
``HttpProcessor`` adapter (held to the conformance kit), and both apps with a worker."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any
from uuid import UUID

import httpx2
import pytest
import pytest_asyncio

from examples.common.http_processor import HttpProcessor
from examples.common.settings import Settings
from examples.processor.__main__ import decline_codes, serve
from examples.processor.app import Webhooks, create_app
from paymentorch.domain import OperationKind, uuid7
from paymentorch.domain.processing import Outcome, ProcessorRequest
from paymentorch.testing import SimulatedProcessor
from paymentorch.testing.processor_contract import *  # noqa: F403
from paymentorch.testing.processor_contract import ProcessorUnderTest
from tests.examples.conftest import WEBHOOK_SECRET, Client, signed


class Service:
    """The processor service on a free loopback port, in a thread with its own loop."""

    def __init__(self, processor: SimulatedProcessor, webhooks: Webhooks | None = None) -> None:
        self.processor = processor
        self.webhooks = webhooks
        self.app = create_app(processor, webhooks)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self.wait_until_listening()

    def _run(self) -> None:
        self._stop = asyncio.Event()
        try:
            self._loop.run_until_complete(serve(self.app, "127.0.0.1", self.port, self._stop))
        finally:
            self._loop.close()

    def listening(self) -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def wait_until_listening(self) -> None:
        deadline = time.monotonic() + 20
        while not self.listening():
            assert time.monotonic() < deadline, "the processor service did not start"
            time.sleep(0.05)  # polling a starting server, not waiting out a race

    def switch(self, **switches: Any) -> dict[str, Any]:
        current = httpx2.get(f"{self.url}/v1/switches").json()
        answer = httpx2.put(f"{self.url}/v1/switches", json={**current, **switches})
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout=10)


@pytest.fixture
def service() -> Iterator[Service]:
    running = Service(SimulatedProcessor(success_rate=0.9, latency=(0, 0), seed=5))
    yield running
    running.stop()


@pytest_asyncio.fixture
async def processor_under_test(service: Service) -> AsyncIterator[ProcessorUnderTest]:
    """The conformance kit's fixture: the HTTP adapter, with the service's ledger."""
    adapter = HttpProcessor(service.url)
    yield ProcessorUnderTest(adapter, executions=service.processor.ledger.get)
    await adapter.aclose()


def _request() -> ProcessorRequest:
    return ProcessorRequest(uuid7(), OperationKind.CHARGE, uuid7(), Decimal("12.50"), "USD")


async def test_a_refused_connection_was_not_attempted(service: Service) -> None:
    """With the socket closed the request never left: NOT_ATTEMPTED, and nothing moved."""
    adapter = HttpProcessor(service.url)
    assert service.switch(refuseSeconds=30)["refuseSeconds"] > 0
    deadline = time.monotonic() + 10
    while service.listening():
        assert time.monotonic() < deadline, "the socket stayed open"
        await asyncio.sleep(0.05)  # polling the socket's state, not waiting out a race
    request = _request()
    result = await adapter.execute(request)
    assert (result.outcome, result.code) == (Outcome.NOT_ATTEMPTED, "connect")
    assert service.processor.ledger == {}
    service.app.state.refuse_until = 0.0  # and it comes back
    deadline = time.monotonic() + 10
    while not service.listening():
        assert time.monotonic() < deadline, "the socket did not open again"
        await asyncio.sleep(0.05)
    assert (await adapter.execute(request)).outcome in (Outcome.SUCCEEDED, Outcome.DECLINED)
    await adapter.aclose()


async def test_a_timeout_is_unknown_and_the_lookup_tells(service: Service) -> None:
    """An answer held back past the client's patience is UNKNOWN, never a decline."""
    service.switch(timeoutRate=1.0, executedOnTimeout=1.0, successRate=1.0)
    adapter = HttpProcessor(service.url, timeout=0.3)
    request = _request()
    result = await adapter.execute(request)
    assert (result.outcome, result.code) == (Outcome.UNKNOWN, "ReadTimeout")
    found = await adapter.lookup(request)
    assert (found.outcome, found.reference) == (Outcome.SUCCEEDED, f"sim-{request.operation_id}")
    assert service.processor.ledger == {request.operation_id: 1}
    await adapter.aclose()


def _until(check: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "the worker did not get there in time"
        time.sleep(0.1)  # polling the app's state while its worker runs


def test_the_apps_charge_through_the_processor(
    make_client: Callable[..., Client], service: Service, admin: str
) -> None:
    """Created with captureMethod, a payment is confirmed or failed by the processor's
    answer within seconds; a conflicting late webhook puts it before a person, who
    settles it."""
    service.switch(successRate=1.0)
    client = make_client(processor_urls=(service.url,))
    assert client("GET", "/api/processor", token=admin).json == {
        "name": "router",
        "processors": {"processor-1": "closed"},
    }
    made = client("POST", "/api/payments", token=admin,
                  json_body={"customerId": "ABCD-12345", "amount": "25.00",
                             "captureMethod": "automatic"})  # fmt: skip
    assert made.status == 201, made.text
    pid = made.json["id"]
    _until(lambda: client("GET", f"/api/payments/{pid}", token=admin).json["status"] != "Pending")
    assert client("GET", f"/api/payments/{pid}", token=admin).json["status"] == "Confirmed"
    (op,) = client("GET", f"/api/payments/{pid}/operations", token=admin).json
    assert (op["kind"], op["status"], op["processor"]) == ("charge", "succeeded", "processor-1")
    assert service.processor.ledger == {UUID(op["id"]): 1}
    event = {"eventId": "evt-9", "outcome": "declined", "operationId": op["id"]}
    reply = client("POST", "/api/processors/processor-1/events", **signed(event))
    assert (reply.status, reply.json) == (200, {"new": True})
    again = client("POST", "/api/processors/processor-1/events", **signed(event))
    assert again.json == {"new": False}
    (flagged,) = client("GET", "/api/operations/attention", token=admin).json
    assert (flagged["id"], flagged["status"]) == (op["id"], "needs_attention")
    verdict = {"outcome": "succeeded", "reason": "the statement shows it"}
    settled = client("POST", f"/api/operations/{op['id']}/resolve", token=admin, json_body=verdict)
    assert (settled.status, settled.json["status"]) == (200, "succeeded")
    assert client("GET", "/api/operations/attention", token=admin).json == []
    refund = client("POST", f"/api/payments/{pid}/refunds", token=admin,
                    json_body={"amount": "5.00"})  # fmt: skip
    assert (refund.status, refund.json["status"]) == (201, "pending")
    _until(
        lambda: client("GET", f"/api/payments/{pid}", token=admin).json["refundedAmount"] == "5.00"
    )


def test_without_a_processor_payments_wait_for_a_person(client: Client, admin: str) -> None:
    """No processor: /api/processor is 404 and a captureMethod is refused with 422."""
    assert client("GET", "/api/processor", token=admin).status == 404
    reply = client("POST", "/api/payments", token=admin,
                   json_body={"customerId": "ABCD-12345", "amount": "1.00",
                              "captureMethod": "automatic"})  # fmt: skip
    assert reply.status == 422
    assert reply.json["errors"][0]["field"] == "captureMethod"


@pytest.fixture
def app_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def calling_back(app_port: int) -> Iterator[Service]:
    """The processor service, calling the app on ``app_port`` back, signed."""
    url = f"http://127.0.0.1:{app_port}/api/processors/processor-1/events"
    running = Service(SimulatedProcessor(latency=(0, 0), seed=5), Webhooks(url, WEBHOOK_SECRET))
    yield running
    running.stop()


def test_the_processor_calls_back_signed(
    calling_back: Service, app_port: int, settings: Settings, admin: str
) -> None:
    """The example processor signs its callbacks with the shared secret, and the app takes
    them: a charge whose answer is held back past the worker's patience is settled by
    the processor's callback (its audit entry names the processor), or by the worker's
    lookup if that comes first. The callbacks sent before the worker recorded its
    attempt were refused (403) and delivered again."""
    import uvicorn

    from examples.fastapi_app.main import create_app as create_api

    calling_back.switch(timeoutRate=1.0, executedOnTimeout=1.0, successRate=1.0)
    app = create_api(replace(settings, processor_urls=(calling_back.url,)))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=app_port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base, headers = f"http://127.0.0.1:{app_port}", {"Authorization": f"Bearer {admin}"}
    try:
        _until(lambda: _answers(base))
        body = {"customerId": "ABCD-12345", "amount": "25.00", "captureMethod": "automatic"}
        made = httpx2.post(f"{base}/api/payments", json=body, headers=headers).json()
        path = f"{base}/api/payments/{made['id']}"
        _until(lambda: httpx2.get(path, headers=headers).json()["status"] != "Pending", 30)
        assert httpx2.get(path, headers=headers).json()["status"] == "Confirmed"
        _until(lambda: calling_back.webhooks is not None and calling_back.webhooks.delivered > 0)
        trail = httpx2.get(f"{path}/audit", headers=headers).json()
        assert trail[-1]["actorId"] in ("processor:processor-1", "worker")
    finally:
        calling_back.stop()
        server.should_exit = True
        thread.join(timeout=20)


def _answers(base: str) -> bool:
    try:
        return httpx2.get(f"{base}/health/live").status_code == 200
    except httpx2.HTTPError:
        return False


async def test_declines_carry_the_codes_asked_for() -> None:
    """``--decline-codes`` weighs the codes the service's declines carry, and the adapter
    passes each code on: the hard and soft declines a collection policy tells apart."""
    codes = decline_codes("insufficient_funds=3,card_stolen")
    assert codes == {"insufficient_funds": 3.0, "card_stolen": 1.0}
    for bad in ("=3", "x=-1", "x=0", "x=many"):
        with pytest.raises(ValueError, match="code=weight"):  # a usage error, to argparse
            decline_codes(bad)
    running = Service(SimulatedProcessor(success_rate=0, latency=(0, 0), seed=3,
                                         decline_codes=codes))  # fmt: skip
    adapter = HttpProcessor(running.url)
    try:
        results = [await adapter.execute(_request()) for _ in range(12)]
    finally:
        await adapter.aclose()
        running.stop()
    assert {r.outcome for r in results} == {Outcome.DECLINED}
    assert {r.code for r in results} == {"insufficient_funds", "card_stolen"}
