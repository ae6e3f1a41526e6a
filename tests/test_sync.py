"""The blocking twin: threads, fork, validation and shutdown behave as for the async service."""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

import paymentorch as po
from paymentorch.clock import ManualClock
from paymentorch.testing import Backend, SimulatedProcessor
from tests.children import forked

ADMIN = po.Actor.system()


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="counts descriptors in /proc")
def test_a_thread_per_call_leaks_no_descriptors(backend: Backend) -> None:
    """200 short-lived threads (a threaded server's requests) leave no descriptors behind."""
    with po.open_sync_service(backend.url or "memory://") as service:
        payment = service.create_payment("ABCD-12345", "1.00", actor=ADMIN)

        def request() -> None:
            assert service.get_payment(payment.id).id == payment.id

        for _ in range(10):  # warm up whatever the service opens once
            thread = threading.Thread(target=request)
            thread.start()
            thread.join()
        gc.collect()
        before = _open_fds()
        for _ in range(200):
            thread = threading.Thread(target=request)
            thread.start()
            thread.join()
        gc.collect()
        assert _open_fds() - before < 5


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_twin_opened_before_fork_works_in_the_child(backend: Backend) -> None:
    """gunicorn --preload: the child uses the twin at once; the parent's stays usable."""
    with po.open_sync_service(backend.url or "memory://") as service:
        before = service.create_payment("ABCD-12345", "1.00", actor=ADMIN)

        def child() -> int:
            made = service.create_payment("ABCD-12345", "2.00", actor=ADMIN)
            service.confirm_payment(made.id, actor=ADMIN)
            return 0 if service.get_payment(before.id).id == before.id else 2

        assert forked(child) == 0
        after = service.create_payment("ABCD-12345", "3.00", actor=ADMIN)
        assert service.confirm_payment(after.id, actor=ADMIN).status is po.PaymentStatus.CONFIRMED
        expected = 1 if backend.name == "memory" else 2  # the child's copy is its own
        assert service.count_payments(status=po.PaymentStatus.CONFIRMED) == expected


async def test_bulk_confirm_validates_as_the_async_service_does() -> None:
    """confirm_payments("abc") is the same ValidationError through both services."""
    async with await po.open_service("memory://") as service:
        with pytest.raises(po.ValidationError) as expected:
            await service.confirm_payments("abc", actor=ADMIN)
    errors = await asyncio.to_thread(_sync_bulk_errors)
    assert errors == expected.value.errors


def _sync_bulk_errors() -> tuple[po.FieldError, ...]:
    with po.open_sync_service("memory://") as service, pytest.raises(po.ValidationError) as got:
        service.confirm_payments("abc", actor=ADMIN)
    return got.value.errors


@pytest.mark.parametrize("scheme", ["memory", "sqlite"])
def test_closing_from_atexit_is_quiet(tmp_path: Path, scheme: str) -> None:
    """A twin closed by an atexit handler closes cleanly, with nothing on stderr."""
    url = "memory://" if scheme == "memory" else f"sqlite:///{tmp_path / 'p.db'}"
    script = (
        "import atexit, paymentorch as po\n"
        f"service = po.open_sync_service({url!r})\n"
        "service.create_payment('ABCD-12345', '1', actor=po.Actor.system())\n"
        "atexit.register(service.close)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, done.stderr) == (0, "")


def test_the_twin_moves_a_plans_money_as_the_service_does(tmp_path: Path) -> None:
    """The blocking twin queues installment 1, not the order; a replay with another plan
    is a conflict; a refund waits for a collection under way."""
    processor = SimulatedProcessor(latency=(0, 0), success_rate=1.0)
    url = f"sqlite:///{tmp_path / 'twin-plans.db'}"
    clock = ManualClock(datetime(2026, 3, 2, tzinfo=UTC))
    with po.open_sync_service(url, processor=processor, clock=clock, create_schema=True) as twin:
        payment = twin.create_payment(
            "ABCD-12345", "100.00", actor=ADMIN, capture_method="automatic",
            plan=po.PlanTerms(), idempotency_key="order-1",
        )  # fmt: skip
        (first,) = twin.operations(payment.id)
        assert (first.kind, first.amount, first.installment) == (
            po.OperationKind.INSTALLMENT, Decimal("25.00"), 1,
        )  # fmt: skip
        with pytest.raises(po.IdempotencyConflict):
            twin.create_payment(
                "ABCD-12345", "100.00", actor=ADMIN, capture_method="automatic",
                plan=po.PlanTerms(installments=12), idempotency_key="order-1",
            )  # fmt: skip
        with pytest.raises(po.PermissionDenied):  # never sent: no callback settles it
            twin.record_processor_event(
                "simulated", "e-1", result=po.ProcessorResult(po.Outcome.SUCCEEDED),
                operation_id=first.id,
            )  # fmt: skip
        twin.confirm_payment(payment.id, actor=ADMIN)  # installment 1 paid by hand meanwhile
        assert twin.plan(payment.id).installments[0].status is po.InstallmentStatus.PAID
        clock.advance(timedelta(days=14))
        assert twin.collect_installments() == 1
        refund = twin.refund_payment(payment.id, "60.00", actor=ADMIN)
        assert (refund.status, refund.due_at) == (po.OperationStatus.PENDING, None)
        assert twin.get_payment(payment.id).pending_refunds == Decimal("60.00")
        assert [i.amount for i in twin.plan(payment.id).installments] == [Decimal("25.00")] * 4
