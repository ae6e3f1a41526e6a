"""Optional OpenTelemetry SDK wiring: metrics exposed for Prometheus at ``/metrics``."""

from __future__ import annotations

from typing import Any

from examples.common.settings import Settings


def meter_provider(settings: Settings) -> Any | None:
    """An SDK meter provider read by Prometheus, when ``PAYMENTORCH_OTEL=1``; else None."""
    if not settings.telemetry:
        return None
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider

    return MeterProvider(metric_readers=[PrometheusMetricReader()])


def metrics_text() -> tuple[bytes, str]:
    """The Prometheus exposition of every registered metric, with its content type."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return generate_latest(), CONTENT_TYPE_LATEST
