"""Spans and metrics, read through the OpenTelemetry SDK's in-memory exporter and reader."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import paymentorch as po
from paymentorch.telemetry import DURATION_BUCKETS

USER = po.Actor("user-1", roles={po.Role.USER})
ADMIN = po.Actor("admin-1", roles={po.Role.ADMIN})


@pytest.fixture
def telemetry() -> tuple[InMemorySpanExporter, InMemoryMetricReader, dict[str, Any]]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    providers = {
        "tracer_provider": tracer_provider,
        "meter_provider": MeterProvider(metric_readers=[reader]),
    }
    return exporter, reader, providers


def _metrics(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    assert data is not None
    found: dict[str, list[Any]] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            assert scope.scope.name == "paymentorch"
            for metric in scope.metrics:
                found[metric.name] = list(metric.data.data_points)
                found[metric.name + ":unit"] = [metric.unit]
    return found


async def test_spans_name_operations_and_hide_personal_data(
    telemetry: tuple[InMemorySpanExporter, InMemoryMetricReader, dict[str, Any]],
) -> None:
    """One INTERNAL span per operation with payment attributes, never customer or metadata."""
    exporter, _, providers = telemetry
    async with await po.open_service("memory://", **providers) as service:
        payment = await service.create_payment(
            "SECR-99999", "12.50", actor=USER, metadata={"email": "a@example.com"}
        )
        await service.confirm_payment(payment.id, actor=ADMIN)
        with pytest.raises(po.InvalidTransition):
            await service.confirm_payment(payment.id, actor=ADMIN)
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == [
        "paymentorch.create_payment",
        "paymentorch.confirm_payment",
        "paymentorch.confirm_payment",
    ]
    create = spans[0]
    assert create.kind.name == "INTERNAL"
    assert create.instrumentation_scope is not None
    assert create.instrumentation_scope.name == "paymentorch"
    assert create.instrumentation_scope.version == po.__version__
    assert dict(create.attributes or {}) == {
        "paymentorch.backend": "memory",
        "paymentorch.payment.id": str(payment.id),
        "paymentorch.payment.status": "Pending",
        "paymentorch.currency": "USD",
    }
    assert spans[2].status.status_code.name == "ERROR"
    for span in spans:
        text = str(dict(span.attributes or {})) + str([e.attributes for e in span.events])
        assert "SECR-99999" not in text
        assert "example.com" not in text


async def test_metrics_count_payments_amounts_and_durations(
    telemetry: tuple[InMemorySpanExporter, InMemoryMetricReader, dict[str, Any]],
) -> None:
    """Counters by status, the amount histogram by currency and durations by outcome."""
    _, reader, providers = telemetry
    async with await po.open_service("memory://", **providers) as service:
        a = await service.create_payment("ABCD-12345", "10.00", actor=USER)
        b = await service.create_payment("ABCD-12345", "1000", actor=USER, currency="JPY")
        await service.confirm_payment(a.id, actor=ADMIN)
        await service.fail_payment(b.id, reason="declined", actor=ADMIN)
        with pytest.raises(po.InvalidTransition):
            await service.cancel_payment(b.id, actor=ADMIN)
    found = _metrics(reader)
    assert sum(p.value for p in found["paymentorch.payments.created"]) == 2
    transitions = {
        p.attributes["to_status"]: p.value for p in found["paymentorch.payments.transitions"]
    }
    assert transitions == {"Confirmed": 1, "Failed": 1}
    amounts = {p.attributes["currency"]: p.sum for p in found["paymentorch.payment.amount"]}
    assert amounts == {"USD": 10.0, "JPY": 1000.0}
    durations = {
        (p.attributes["operation"], p.attributes["outcome"]): p.count
        for p in found["paymentorch.operation.duration"]
    }
    assert durations[("create_payment", "ok")] == 2
    assert durations[("cancel_payment", "invalid_transition")] == 1
    assert found["paymentorch.payments.created:unit"] == ["{payment}"]
    assert found["paymentorch.payments.transitions:unit"] == ["{payment}"]
    assert found["paymentorch.operation.duration:unit"] == ["s"]


async def test_spans_follow_a_provider_installed_later(monkeypatch: pytest.MonkeyPatch) -> None:
    """A service opened before the host installs its SDK starts tracing (within a second)."""
    import time

    from opentelemetry import trace

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    async with await po.open_service("memory://") as service:
        await service.count_payments()
        assert exporter.get_finished_spans() == ()
        monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
        monkeypatch.setattr(trace, "_TRACER_PROVIDER", provider)
        later = time.monotonic() + 1.5
        monkeypatch.setattr("paymentorch.telemetry.time.monotonic", lambda: later)
        await service.count_payments()
    assert [s.name for s in exporter.get_finished_spans()] == ["paymentorch.count_payments"]


async def test_durations_land_in_buckets_for_seconds(
    telemetry: tuple[InMemorySpanExporter, InMemoryMetricReader, dict[str, Any]],
) -> None:
    """Operation durations use boundaries in seconds, so fast calls spread over buckets."""
    _, reader, providers = telemetry
    async with await po.open_service("memory://", **providers) as service:
        for _ in range(20):
            await service.create_payment("ABCD-12345", "1.00", actor=USER)
    (point,) = [
        p
        for p in _metrics(reader)["paymentorch.operation.duration"]
        if p.attributes["operation"] == "create_payment"
    ]
    # The SDK's default boundaries (0, 5, 10, ... 10,000) suit milliseconds, not seconds.
    assert tuple(point.explicit_bounds) == DURATION_BUCKETS
    assert (point.count, sum(point.bucket_counts)) == (20, 20)
