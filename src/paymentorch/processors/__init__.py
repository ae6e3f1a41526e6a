"""Routing requests over several processors, with a circuit breaker for each."""

from paymentorch.processors.router import CircuitBreaker, Router

__all__ = ["CircuitBreaker", "Router"]
