"""The use cases behind ``PaymentService``, one module per family, sharing one
``Context`` and one commit pipeline (``pipeline.commit``): read, decide (pure, in
``paymentorch.domain``), write one guarded change, update the cache, record telemetry,
and decide again after a lost race."""
