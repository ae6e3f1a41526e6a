"""The processor conformance kit: what any ``PaymentProcessor`` adapter must do.

In a test module::

    from paymentorch.testing.processor_contract import *  # noqa: F403

and define a ``processor_under_test`` fixture returning a ``ProcessorUnderTest``: the
adapter, pointed at a sandbox that answers (no simulated timeouts), and, if you can
see it, how many times money really moved for an operation id. The kit needs
pytest-asyncio and runs in its strict mode.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from uuid import UUID

import attrs
import pytest

from paymentorch.domain import OperationKind, uuid7
from paymentorch.domain.processing import (
    Outcome,
    ProcessorCapabilities,
    ProcessorRequest,
    ProcessorResult,
)
from paymentorch.ports import PaymentProcessor

ANSWERS = frozenset(
    {Outcome.SUCCEEDED, Outcome.DECLINED, Outcome.PENDING, Outcome.UNKNOWN, Outcome.NOT_ATTEMPTED}
)


@attrs.frozen
class ProcessorUnderTest:
    """An adapter under test.

    Attributes:
        processor: The adapter.
        executions: How many times money moved for an operation id, if the sandbox
            tells (``SimulatedProcessor.ledger.get``); None when it cannot be seen.
    """

    processor: PaymentProcessor
    executions: Callable[[UUID], int | None] | None = None

    def moved(self, operation_id: UUID) -> int | None:
        """Times money moved for ``operation_id``, or None when it cannot be seen."""
        return None if self.executions is None else self.executions(operation_id) or 0


def _request(kind: OperationKind = OperationKind.CHARGE) -> ProcessorRequest:
    return ProcessorRequest(
        operation_id=uuid7(),
        kind=kind,
        payment_id=uuid7(),
        amount=Decimal("12.34"),
        currency="USD",
    )


def _same(a: ProcessorResult, b: ProcessorResult) -> bool:
    return (a.outcome, a.reference) == (b.outcome, b.reference)


async def test_processor_says_who_it_is(processor_under_test: ProcessorUnderTest) -> None:
    """A processor has a non-empty name and declares its capabilities."""
    processor = processor_under_test.processor
    assert isinstance(processor.name, str)
    assert processor.name
    assert isinstance(processor.capabilities, ProcessorCapabilities)


async def test_an_operation_id_moves_money_once(processor_under_test: ProcessorUnderTest) -> None:
    """Executing one operation id again returns the first answer and moves nothing more."""
    processor, request = processor_under_test.processor, _request()
    first = await processor.execute(request)
    assert first.outcome in ANSWERS
    for _ in range(2):
        assert _same(await processor.execute(request), first)
    assert (processor_under_test.moved(request.operation_id) or 0) <= 1


async def test_concurrent_repeats_move_money_once(
    processor_under_test: ProcessorUnderTest,
) -> None:
    """Five concurrent calls with one operation id: one answer, at most one execution."""
    processor, request = processor_under_test.processor, _request()
    answers = await asyncio.gather(*(processor.execute(request) for _ in range(5)))
    assert all(_same(a, answers[0]) for a in answers)
    assert (processor_under_test.moved(request.operation_id) or 0) <= 1


async def test_lookup_finds_what_execute_did(processor_under_test: ProcessorUnderTest) -> None:
    """With the lookup capability, a lookup returns the execution's answer, or NOT_FOUND."""
    processor = processor_under_test.processor
    if not processor.capabilities.lookup:
        pytest.skip(f"{processor.name} declares no lookup")
    request = _request()
    assert (await processor.lookup(request)).outcome is Outcome.NOT_FOUND
    done = await processor.execute(request)
    found = await processor.lookup(request)
    if done.outcome in {Outcome.SUCCEEDED, Outcome.DECLINED}:
        assert _same(found, done)


async def test_not_found_means_what_it_says(processor_under_test: ProcessorUnderTest) -> None:
    """Declaring not_found_means_not_executed: after NOT_FOUND, executing moves money once."""
    processor = processor_under_test.processor
    if not processor.capabilities.not_found_means_not_executed:
        pytest.skip(f"{processor.name} does not promise that NOT_FOUND means not executed")
    request = _request(OperationKind.AUTHORIZE)
    assert (await processor.lookup(request)).outcome is Outcome.NOT_FOUND
    assert processor_under_test.moved(request.operation_id) in (None, 0)
    if (await processor.execute(request)).outcome is Outcome.SUCCEEDED:
        assert processor_under_test.moved(request.operation_id) in (None, 1)


__all__ = [name for name in dict(globals()) if name.startswith("test_")]

# Marked one by one so that ``import *`` carries the marks into the importing module.
for _name in __all__:
    globals()[_name] = pytest.mark.asyncio(globals()[_name])
