"""Spans and metrics through opentelemetry-api only: a no-op until the host installs an SDK."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from opentelemetry import metrics, trace

from paymentorch._version import __version__
from paymentorch.domain import Payment, PaymentError

SCOPE = "paymentorch"


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
        )

    @contextlib.contextmanager
    def operation(self, name: str) -> Iterator[trace.Span]:
        """One INTERNAL span and one duration sample for a service operation."""
        start = time.perf_counter()
        outcome = "ok"
        with self.tracer.start_as_current_span(
            f"paymentorch.{name}",
            kind=trace.SpanKind.INTERNAL,
            attributes={"paymentorch.backend": self.backend},
        ) as span:
            try:
                yield span
            except PaymentError as exc:
                outcome = exc.code
                raise
            except BaseException:
                outcome = "error"
                raise
            finally:
                self.duration.record(
                    time.perf_counter() - start, {"operation": name, "outcome": outcome}
                )

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

    def payment_created(self, payment: Payment) -> None:
        """Count a new payment and its amount."""
        self.created.add(1, {"to_status": payment.status.value})
        self.amount.record(float(payment.amount), {"currency": payment.currency})

    def payment_changed(self, payment: Payment) -> None:
        """Count a transition."""
        self.transitions.add(1, {"to_status": payment.status.value})
