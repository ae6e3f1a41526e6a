"""Benchmarks: paymentorch against hand-written SQL and the ORM, in one process."""
