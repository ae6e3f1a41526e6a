"""``HttpProcessor``: a ``PaymentProcessor`` adapter for the simulated processor service
(``examples.processor``), on httpx2.

How it maps what the network says to an ``Outcome`` is the part to copy for a real
gateway: only an answer the processor gave is ``SUCCEEDED`` or ``DECLINED``; a
connection that never opened is ``NOT_ATTEMPTED`` (the request did not leave); anything
after the request may have left (a read timeout, a reset, a 5xx) is ``UNKNOWN``.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx2

import paymentorch as po
from paymentorch.domain.processing import Outcome, ProcessorRequest, ProcessorResult

NOT_SENT = (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout)


class HttpProcessor:
    """The simulated processor service at ``base_url``, as a ``PaymentProcessor``."""

    capabilities = po.ProcessorCapabilities(lookup=True, not_found_means_not_executed=True)

    def __init__(
        self, base_url: str, *, name: str = "simulated-http", timeout: float = 10.0
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self._client = httpx2.AsyncClient(
            base_url=self.base_url,
            timeout=httpx2.Timeout(timeout, connect=2.0),
            limits=httpx2.Limits(max_connections=20),
        )

    async def execute(self, request: ProcessorRequest) -> ProcessorResult:
        """POST the operation, with its id as the idempotency key."""
        body = {
            "operationId": str(request.operation_id),
            "kind": request.kind.value,
            "paymentId": str(request.payment_id),
            "amount": str(request.amount),
            "currency": request.currency,
            "reference": request.reference,
        }
        headers = {"Idempotency-Key": str(request.operation_id)}
        return await self._call("POST", "/v1/operations", json=body, headers=headers)

    async def lookup(self, request: ProcessorRequest) -> ProcessorResult:
        """GET what became of the operation id."""
        return await self._call("GET", f"/v1/operations/{request.operation_id}")

    async def _call(self, method: str, path: str, **options: object) -> ProcessorResult:
        try:
            response = await self._client.request(method, path, **options)  # type: ignore[arg-type]
        except NOT_SENT as exc:
            return ProcessorResult(Outcome.NOT_ATTEMPTED, code="connect", message=str(exc) or None)
        except httpx2.HTTPError as exc:  # the request may have arrived: nobody knows
            name = type(exc).__name__
            return ProcessorResult(Outcome.UNKNOWN, code=name, message=str(exc) or name)
        try:
            data = response.json() if response.status_code in (200, 404) else {}
            return ProcessorResult(
                Outcome(data["outcome"]),
                data.get("reference"),
                data.get("code"),
                data.get("message"),
            )
        except (ValueError, KeyError, TypeError):  # no answer we can read: nobody knows
            return ProcessorResult(
                Outcome.UNKNOWN, code=f"http_{response.status_code}", message=response.text[:200]
            )

    async def aclose(self) -> None:
        """Close the connections."""
        await self._client.aclose()


def processor_from_urls(urls: Sequence[str]) -> po.Router:
    """A router over one ``HttpProcessor`` per URL, named ``processor-1``, ``processor-2``..."""
    return po.Router(
        [HttpProcessor(url, name=f"processor-{n}") for n, url in enumerate(urls, start=1)]
    )


async def close_processors(router: po.Router) -> None:
    """Close every ``HttpProcessor`` of ``router``."""
    for processor in router.processors.values():
        if isinstance(processor, HttpProcessor):
            await processor.aclose()
