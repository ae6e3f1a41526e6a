"""Spans and metrics through opentelemetry-api only: a no-op until the host installs an SDK."""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping, Sequence
from types import MappingProxyType, TracebackType
from typing import Any, Final

from opentelemetry import metrics, trace

from paymentorch import _deadline
from paymentorch._version import __version__
from paymentorch.domain import Payment, PaymentError

SCOPE = "paymentorch"
DURATION_BUCKETS: Final = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0,
)  # fmt: skip
"""Bucket boundaries for ``paymentorch.operation.duration``, in seconds: 100 µs to 10 s."""


class Telemetry:
    """The tracer and the instruments of one service.

    Span attributes never carry the customer id or metadata: those are personal data.
    """

    def __init__(
        self,
        *,
        backend: str,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        self.backend = backend
        self._explicit_tracer = tracer_provider is not None
        self._sdk = False
        self._recheck_at = 0.0
        self.tracer = trace.get_tracer(SCOPE, __version__, tracer_provider=tracer_provider)
        meter = metrics.get_meter(SCOPE, __version__, meter_provider=meter_provider)
        self.created = meter.create_counter(
            "paymentorch.payments.created", unit="{payment}", description="Payments created"
        )
        self.transitions = meter.create_counter(
            "paymentorch.payments.transitions",
            unit="{payment}",
            description="Payments moved out of Pending, by the status they reached",
        )
        self.amount = meter.create_histogram(
            "paymentorch.payment.amount",
            description="Amounts of created payments, in major units, by currency",
        )
        self.duration = meter.create_histogram(
            "paymentorch.operation.duration",
            unit="s",
            description="Time spent in each service operation, by outcome",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )

    def operation(self, name: str) -> _Operation:
        """One INTERNAL span and one duration sample for a service operation."""
        return _Operation(self, name)

    def tracing(self) -> bool:
        """Whether spans go anywhere: a provider was given, or the host installed an SDK.

        Until then the global provider is the API's proxy and every span would be dropped,
        so the service skips making them (the duration metric is still recorded). Looking
        the provider up reads the environment, so the answer is kept for a second.
        """
        if self._explicit_tracer:
            return True
        now = time.monotonic()
        if now >= self._recheck_at:
            self._recheck_at = now + 1.0
            self._sdk = not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
        return self._sdk

    @staticmethod
    def describe(span: trace.Span, payment: Payment) -> None:
        """Tag the span with what may be known of a payment (never who pays or metadata)."""
        if span.is_recording():
            attributes: dict[str, Any] = {
                "paymentorch.payment.id": str(payment.id),
                "paymentorch.payment.status": payment.status.value,
                "paymentorch.currency": payment.currency,
            }
            span.set_attributes(attributes)

    def payments_created(self, payments: Sequence[Payment]) -> None:
        """Count a batch of new (Pending) payments and their amounts."""
        if payments:
            self.created.add(len(payments), _attributes("to_status", payments[0].status.value))
        record = self.amount.record
        for payment in payments:
            record(float(payment.amount), _attributes("currency", payment.currency))

    def payment_changed(self, payment: Payment) -> None:
        """Count a transition."""
        self.transitions.add(1, _attributes("to_status", payment.status.value))


class _Operation:
    """The context of one service operation: its span (if traced), its duration, and the
    start its store's ``deadline`` counts from."""

    __slots__ = ("_call", "_name", "_span_context", "_start", "_telemetry")

    def __init__(self, telemetry: Telemetry, name: str) -> None:
        self._telemetry = telemetry
        self._name = name
        self._span_context: Any = None

    def __enter__(self) -> trace.Span:
        self._start = time.perf_counter()
        self._call = _deadline.begin()
        telemetry = self._telemetry
        if not telemetry.tracing():
            return trace.INVALID_SPAN
        self._span_context = telemetry.tracer.start_as_current_span(
            f"paymentorch.{self._name}",
            kind=trace.SpanKind.INTERNAL,
            attributes={"paymentorch.backend": telemetry.backend},
        )
        span: trace.Span = self._span_context.__enter__()
        return span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            outcome = "ok"
        elif isinstance(exc, PaymentError):
            outcome = exc.code
        else:
            outcome = "error"
        _deadline.end(self._call)
        self._telemetry.duration.record(
            time.perf_counter() - self._start, _outcome(self._name, outcome)
        )
        if self._span_context is not None:
            self._span_context.__exit__(exc_type, exc, tb)


@functools.cache
def _attributes(name: str, value: str) -> Mapping[str, str]:
    # Metric attributes come from a few fixed values: build each mapping once.
    return MappingProxyType({name: value})


@functools.cache
def _outcome(operation: str, outcome: str) -> Mapping[str, str]:
    return MappingProxyType({"operation": operation, "outcome": outcome})
