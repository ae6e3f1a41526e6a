"""The shipped contract suite fails for every broken store, through its public entry point."""

from __future__ import annotations

import pytest

from tests import mutant_stores

pytestmark = pytest.mark.once  # the suite catching each mutant: the same on every Python

CONFTEST = """
import pytest
from paymentorch.testing import Backend
from {module} import {store}


async def open_store():
    return {store}()


@pytest.fixture
def backend():
    return Backend("{store}", open_store)
"""

# Each broken store, and tests of the suite that must catch it (others may fail too).
CAUGHT_BY = {
    # Through the service, the in-memory race has no await between read and write, so
    # only the direct store test can see this one.
    "IgnoresExpected": {"test_store_apply_with_a_stale_status_writes_nothing"},
    "ForgetsEvents": {
        "test_store_add_then_read",
        "test_audit_trail_records_who_why_and_correlation",
    },
    "IgnoresKeys": {
        "test_store_add_with_a_held_key_inserts_nothing",
        "test_concurrent_creates_with_one_key",
    },
    "ReordersEvents": {"test_outbox_keeps_each_payments_order"},
    "NotAtomic": {
        "test_a_failed_event_write_undoes_the_creation",
        "test_a_failed_event_write_undoes_the_transition",
    },
    "ServesWhenClosed": {"test_store_closed_is_unavailable"},
    "RefundsReadThenWrite": {
        "test_sixteen_refunds_race_for_one_payment",
        "test_store_refuses_a_refund_with_no_room",
        "test_store_refunds_racing_for_one_payment_stay_within_what_was_captured",
    },
    "TransitionsReadThenWrite": {
        "test_store_transitions_racing_for_one_payment_leave_one_winner",
        "test_hundred_concurrent_confirms",
    },
    "ClaimsKeysApart": {
        "test_store_claims_a_transition_key_with_its_change",
        "test_sixteen_repeats_of_a_keyed_confirm_race",
    },
    "TrustsAbandonedLeases": {"test_a_worker_that_died_after_sending_is_never_sent_twice"},
}


ONE_ROLE = """
import pytest
from paymentorch.testing import Backend, contract
from {module} import {store}


async def open_store():
    return {store}()


class TestMyOutbox(contract.TestOutbox):
    @pytest.fixture
    def backend(self):
        return Backend("{store}", open_store)
"""


def _strict_mode(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\nfilterwarnings = error\n"
    )


def _run_suite(pytester: pytest.Pytester, module: str, store: str) -> pytest.RunResult:
    """The suite as docs/howto/testing.md sets it up, in pytest-asyncio's strict mode."""
    _strict_mode(pytester)
    pytester.makeconftest(CONFTEST.format(module=module, store=store))
    pytester.makepyfile(test_store="from paymentorch.testing.contract import *  # noqa: F403\n")
    return pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider")


def test_the_real_memory_store_passes(pytester: pytest.Pytester) -> None:
    """The harness itself is sound: the honest in-memory store passes every test."""
    result = _run_suite(pytester, "paymentorch.adapters.memory", "InMemoryPaymentStore")
    outcomes = result.parseoutcomes()
    assert result.ret == 0, result.stdout.str()
    assert outcomes["passed"] >= 40
    assert "failed" not in outcomes
    # Only the multi-process tests skip, for a store that one process owns.
    assert outcomes.get("skipped", 0) == 9


@pytest.mark.parametrize("store", sorted(CAUGHT_BY))
def test_the_suite_catches_a_broken_store(pytester: pytest.Pytester, store: str) -> None:
    """Each broken store fails the shipped suite, in the tests that pin its promise."""
    assert hasattr(mutant_stores, store)
    result = _run_suite(pytester, "tests.mutant_stores", store)
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    failed = {report.nodeid.split("::")[-1] for report in result.reprec.getfailures()}  # type: ignore[attr-defined]
    missing = CAUGHT_BY[store] - failed
    assert not missing, f"{store} passed {sorted(missing)}; failed: {sorted(failed)}"


@pytest.mark.parametrize(
    ("module", "store", "fails"),
    [
        ("paymentorch.adapters.memory", "InMemoryPaymentStore", set()),
        (
            "tests.mutant_stores",
            "ReordersEvents",
            {
                "test_outbox_keeps_each_payments_order",
                "test_store_requeues_the_parked_events_named",
            },
        ),
    ],
)
def test_one_role_runs_alone_with_its_own_backend(
    pytester: pytest.Pytester, module: str, store: str, fails: set[str]
) -> None:
    """A subclass of one role's class, with the ``backend`` fixture as its own method, runs
    that role's tests and no other, and catches the store that breaks it."""
    from paymentorch.testing import contract

    _strict_mode(pytester)
    pytester.makepyfile(test_outbox=ONE_ROLE.format(module=module, store=store))
    result = pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider")
    reports = result.reprec.getreports("pytest_runtest_logreport")  # type: ignore[attr-defined]
    ran = {r.nodeid for r in reports if r.when == "setup"}
    role = {name for name in dir(contract.TestOutbox) if name.startswith("test_")}
    assert ran == {f"test_outbox.py::TestMyOutbox::{name}" for name in role}
    failed = {report.nodeid.split("::")[-1] for report in result.reprec.getfailures()}  # type: ignore[attr-defined]
    assert failed == fails, result.stdout.str()
    # The multi-process tests skip, for a store that one process owns.
    assert result.parseoutcomes().get("skipped", 0) == 3


PROCESSOR_CONFTEST = """
import pytest
from paymentorch.testing.processor_contract import ProcessorUnderTest
from {module} import {processor}


@pytest.fixture
def processor_under_test():
    made = {processor}(success_rate=1.0, latency=(0, 0), seed=1)
    return ProcessorUnderTest(made, made.ledger.get)
"""


@pytest.mark.parametrize(
    ("module", "processor", "fails"),
    [
        ("paymentorch.testing", "SimulatedProcessor", set()),
        (
            "tests.mutant_stores",
            "ForgetfulProcessor",
            {"test_an_operation_id_moves_money_once", "test_concurrent_repeats_move_money_once"},
        ),
    ],
)
def test_the_processor_kit_catches_a_double_execution(
    pytester: pytest.Pytester, module: str, processor: str, fails: set[str]
) -> None:
    """The conformance kit passes the simulated processor and fails one that executes twice."""
    pytester.makeini(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\nfilterwarnings = error\n"
    )
    pytester.makeconftest(PROCESSOR_CONFTEST.format(module=module, processor=processor))
    pytester.makepyfile(
        test_kit="from paymentorch.testing.processor_contract import *  # noqa: F403\n"
    )
    result = pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider")
    failed = {report.nodeid.split("::")[-1] for report in result.reprec.getfailures()}  # type: ignore[attr-defined]
    assert failed == fails, result.stdout.str()
