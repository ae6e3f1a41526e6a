"""The simulated processor's HTTP API.

``POST /v1/operations`` executes an operation (its ``operationId`` is the idempotency key:
a repeat returns the first answer and moves no money), ``GET /v1/operations/{id}`` looks
one up, ``GET /v1/ledger`` shows how often money moved per operation, and
``GET``/``PUT /v1/switches`` change its behaviour while it runs: the success rate, the
share of timeouts (the answer is held back longer than any client waits, having moved the
money or not), the latency, and ``refuseSeconds``, which closes the listening socket so
that connections are refused (see ``__main__``).

Given ``Webhooks``, it also calls the service back, as real processors do: each final
answer (the one held back too) is posted to the service's webhook URL, signed with the
secret they share (``examples.common.webhooks``), and retried while the service cannot
take it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

import httpx2
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from examples.common.webhooks import SIGNATURE_HEADER, signature
from paymentorch.domain import OperationKind
from paymentorch.domain.processing import Outcome, ProcessorRequest, ProcessorResult
from paymentorch.testing import SimulatedProcessor

HELD_BACK = 30.0  # seconds a timed-out answer is held: longer than any client waits
logger = logging.getLogger("examples.processor")


class Webhooks:
    """Signed callbacks to ``url``: one per final answer, retried with a growing delay
    until the service takes it (2xx), as real processors retry webhooks. A callback can
    arrive before the service has recorded that it sent the operation: the service
    refuses it then (403), and takes a later delivery."""

    def __init__(self, url: str, secret: str, *, attempts: int = 12) -> None:
        self.url = url
        self.secret = secret
        self.attempts = attempts
        self.delivered = 0  # callbacks the service took
        self._sending: set[asyncio.Task[None]] = set()

    def send(self, operation_id: UUID, result: ProcessorResult) -> None:
        """Post what became of ``operation_id``, in the background."""
        if result.outcome not in (Outcome.SUCCEEDED, Outcome.DECLINED):
            return
        event = {
            "eventId": f"evt-{operation_id}",
            "outcome": result.outcome.value,
            "operationId": str(operation_id),
            "reference": result.reference,
            "code": result.code,
            "message": result.message,
        }
        task = asyncio.create_task(self._deliver(json.dumps(event).encode()))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _deliver(self, body: bytes) -> None:
        async with httpx2.AsyncClient(timeout=5.0) as client:
            for attempt in range(self.attempts):
                headers = {"Content-Type": "application/json",
                           SIGNATURE_HEADER: signature(self.secret, body)}  # fmt: skip
                try:
                    answer = await client.post(self.url, content=body, headers=headers)
                except httpx2.HTTPError as exc:
                    logger.warning("webhook not delivered: %s", type(exc).__name__)
                else:
                    if answer.status_code < 300:
                        self.delivered += 1
                        return
                    logger.warning("webhook refused (%s): %s", attempt, answer.text[:200])
                await asyncio.sleep(min(5.0, 0.5 * 2**attempt))


class _Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class OperationRequest(_Camel):
    """One operation to execute."""

    operation_id: UUID
    kind: Literal["charge", "authorize", "capture", "cancel", "refund", "installment"]
    payment_id: UUID
    amount: Decimal = Field(ge=0)
    currency: str = Field(min_length=3, max_length=3)
    reference: str | None = None


class Answer(_Camel):
    """What became of an operation."""

    outcome: Literal["succeeded", "declined", "pending", "not_found"]
    reference: str | None = None
    code: str | None = None
    message: str | None = None

    @classmethod
    def of(cls, result: ProcessorResult) -> Answer:
        return cls.model_validate(
            {"outcome": result.outcome.value, "reference": result.reference,
             "code": result.code, "message": result.message}
        )  # fmt: skip


class Switches(_Camel):
    """How the processor behaves now."""

    success_rate: float = Field(0.95, ge=0, le=1)
    timeout_rate: float = Field(0.0, ge=0, le=1)
    executed_on_timeout: float = Field(0.5, ge=0, le=1)
    latency: tuple[float, float] = (1.0, 5.0)
    refuse_seconds: float = Field(0.0, ge=0, le=3600, description="Refuse connections this long.")


def create_app(
    processor: SimulatedProcessor | None = None, webhooks: Webhooks | None = None
) -> FastAPI:
    """The processor service around ``processor`` (the seed's defaults when None),
    calling the service back through ``webhooks`` when given."""
    sim = processor or SimulatedProcessor()
    app = FastAPI(title="Simulated processor", version="1")
    app.state.processor = sim
    app.state.refuse_until = 0.0

    @app.post("/v1/operations", response_model=Answer)
    async def execute(body: OperationRequest) -> Any:
        request = ProcessorRequest(
            operation_id=body.operation_id,
            kind=OperationKind(body.kind),
            payment_id=body.payment_id,
            amount=body.amount,
            currency=body.currency,
            reference=body.reference,
        )
        try:
            result = await sim.execute(request)
        except TimeoutError:
            if webhooks is not None:  # the answer is late, the callback is not
                webhooks.send(body.operation_id, await sim.lookup(request))
            await asyncio.sleep(HELD_BACK)  # the client gave up long ago
            return JSONResponse({"detail": "timed out"}, status_code=504)
        if webhooks is not None:
            webhooks.send(body.operation_id, result)
        return Answer.of(result)

    @app.get("/v1/operations/{operation_id}", response_model=Answer)
    async def lookup(operation_id: UUID) -> Any:
        request = ProcessorRequest(
            operation_id, OperationKind.CHARGE, operation_id, Decimal(0), "XXX"
        )
        found = await sim.lookup(request)
        status = 404 if found.outcome is Outcome.NOT_FOUND else 200
        return JSONResponse(Answer.of(found).model_dump(by_alias=True), status_code=status)

    @app.get("/v1/ledger")
    async def ledger() -> dict[str, int]:
        return {str(k): v for k, v in sim.ledger.items()}

    @app.get("/v1/switches", response_model=Switches)
    async def switches() -> Switches:
        return _switches(app)

    @app.put("/v1/switches", response_model=Switches)
    async def change(body: Switches) -> Switches:
        sim.success_rate, sim.timeout_rate = body.success_rate, body.timeout_rate
        sim.executed_on_timeout, sim.latency = body.executed_on_timeout, body.latency
        app.state.refuse_until = time.monotonic() + body.refuse_seconds
        return _switches(app)

    return app


def _switches(app: FastAPI) -> Switches:
    sim: SimulatedProcessor = app.state.processor
    left = max(0.0, app.state.refuse_until - time.monotonic())
    return Switches(
        success_rate=sim.success_rate,
        timeout_rate=sim.timeout_rate,
        executed_on_timeout=sim.executed_on_timeout,
        latency=sim.latency,
        refuse_seconds=round(left, 3),
    )
