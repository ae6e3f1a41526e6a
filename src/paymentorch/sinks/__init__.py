"""Event sinks for message brokers, for ``po.OutboxRelay`` and ``paymentorch relay``.

Each sink is an ``EventSink``: an async callable that takes a batch of events and
returns once the broker has acknowledged every one of them, or raises so that the relay
keeps the batch for another attempt. A payment's events reach the broker in the order
they happened; events of different payments go out side by side.

- ``NatsSink`` (``paymentorch[nats]``): JetStream, ``Nats-Msg-Id`` = the event id, so
  the stream drops a repeated delivery within its duplicate window.
- ``RabbitMQSink`` (``paymentorch[rabbitmq]``): persistent messages with publisher
  confirms to a durable topic exchange, routing key = event type, message id = event id.

``sink_from_url`` picks one by the URL's scheme.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from paymentorch.sinks._encoding import encode_event, group_by_payment
from paymentorch.sinks._nats import NatsSink  # the drivers load when a sink is built
from paymentorch.sinks._rabbitmq import RabbitMQSink

__all__ = ["NatsSink", "RabbitMQSink", "encode_event", "group_by_payment", "sink_from_url"]


def sink_from_url(url: str) -> NatsSink | RabbitMQSink:
    """A sink for a ``nats://`` or ``amqp://`` / ``amqps://`` URL.

    The sink's own options ride in the query and are taken out of it before the URL
    reaches the client: ``stream`` and ``subject_prefix`` for NATS, ``exchange`` for
    RabbitMQ, as in ``nats://127.0.0.1:4222?stream=PAYMENTS``.

    Raises:
        ValueError: Another scheme, or an option the sink does not have.
        MissingDriver: The broker's extra is not installed.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    nats, amqp = ("stream", "subject_prefix"), ("exchange",)
    known: dict[str, tuple[str, ...]] = {"nats": nats, "tls": nats, "amqp": amqp, "amqps": amqp}
    if scheme not in known:
        raise ValueError(f"no event sink for {url!r}: use nats://... or amqp://...")
    query = parse_qsl(parts.query, keep_blank_values=True)
    options: dict[str, Any] = {k: v for k, v in query if k in known[scheme]}
    if scheme in ("nats", "tls"):
        unknown = [k for k, _ in query if k not in options]
        if unknown:
            raise ValueError(f"a NATS sink has no option {', '.join(unknown)}")
    rest = urlunsplit(
        parts._replace(query=urlencode([(k, v) for k, v in query if k not in options]))
    )
    if scheme in ("nats", "tls"):
        return NatsSink(rest, **options)
    return RabbitMQSink(rest, **options)  # the rest of the query: aio-pika's own options
