"""The store contract, run against memory, a SQLite file and PostgreSQL."""

from paymentorch.testing.contract import *  # noqa: F403
