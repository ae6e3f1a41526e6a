"""The ``paymentorch`` command: exit statuses a cron job can act on (0 done, 1 the work
failed, 2 bad usage, one line saying why), the plans' tick in the worker, the relay's
failures."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import ClassVar

import pytest

import paymentorch as po
from paymentorch.cli import main
from paymentorch.clock import ManualClock
from tests.children import instant_processor

ROOT = Path(__file__).resolve().parents[1]
ADMIN = po.Actor.system()


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "paymentorch.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    """--version names the version; --help shows each option's default."""
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"paymentorch {po.__version__}"
    with pytest.raises(SystemExit):
        main(["worker", "--help"])
    helped = " ".join(capsys.readouterr().out.split())
    for default in (
        "operations per claim (default: 10)",
        "(default: 5,30,120,600,3600,21600,86400)",
        "seconds between plans' ticks (default: 10.0)",
    ):
        assert default in helped
    with pytest.raises(SystemExit):
        main(["relay", "--help"])
    assert "events per delivery (default: 100)" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["worker", "memory://", "--processor", "tests.children:instant_processor"], "memory://"),
        (["relay", "sqlite:///:memory:", "--sink", "tests.test_cli:Collected"], "one process"),
        (["worker", "sqlite:///w.db", "--processor", "os:getcwd"], "not a PaymentProcessor"),
        (["worker", "sqlite:///w.db", "--processor", "nowhere"], "module:name"),
        (["worker", "sqlite:///w.db", "--processor", "no_such_module:x"], "no_such_module"),
        (["relay", "sqlite:///w.db", "--sink", "os:getcwd"], "not an EventSink"),
        (["relay", "sqlite:///w.db", "--sink", "ftp://broker"], "no event sink"),
        (["worker", "sqlite:///w.db", "--processor", "x:y", "--batch-size", "0"], "more than 0"),
        (["worker", "sqlite:///w.db", "--processor", "x:y", "--late-fee", "lots"], "not an amount"),
        (
            [
                "worker",
                "sqlite:///w.db",
                "--processor",
                "tests.children:instant_processor",
                "--late-fee-repeat",
                "5",
            ],
            "need --late-fee",
        ),
        (["worker", "sqlite:///w.db"], "--processor"),
        (["wrok"], "invalid choice"),
    ],
)
def test_bad_usage_is_2_with_one_line(tmp_path: Path, args: list[str], says: str) -> None:
    """A command given memory://, or something that is not a processor or a sink, or a
    bad option, exits 2 with one line saying why, and touches nothing."""
    done = subprocess.run(
        [sys.executable, "-m", "paymentorch.cli", *args],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert says in done.stderr
    assert not (tmp_path / "w.db").exists()


def test_an_unreachable_database_is_1(tmp_path: Path) -> None:
    """A store that cannot be reached is work that failed: 1, one line."""
    pytest.importorskip("psycopg", reason="the postgres extra is not installed")
    url = "postgresql://nobody@127.0.0.1:1/none?connect_timeout=1"
    done = cli("worker", url, "--processor", "tests.children:instant_processor", "--once")
    assert done.returncode == 1, done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert "worker failed" in done.stderr


async def test_worker_once_collects_a_due_installment(tmp_path: Path) -> None:
    """``worker --once`` runs the plans' tick: an installment that fell due is collected."""
    url = f"sqlite:///{tmp_path / 'plans.db'}"
    month_ago = ManualClock(po.clock.utc_now() - timedelta(days=30))
    terms = po.PlanTerms(installments=4, interval=timedelta(days=14))
    async with await po.open_service(
        url, processor=instant_processor(), clock=month_ago
    ) as service:
        made = await service.create_payment(
            "ABCD-12345", "100.00", actor=ADMIN, capture_method="automatic", plan=terms
        )
        worker = po.PaymentWorker(service)
        while await worker.run_once():  # installment 1, collected a month ago
            continue
        plan = await service.plan(made.id)
        assert [i.status.value for i in plan.installments] == ["paid"] + ["scheduled"] * 3
    done = await _cli_async("worker", url, "--processor", "tests.children:instant_processor",
                            "--once")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "operation(s) worked" in done.stdout
    async with await po.open_service(url) as service:
        plan = await service.plan(made.id)
        # due 16 and 2 days ago: collected now; the last one is not due yet
        assert [i.status.value for i in plan.installments] == ["paid", "paid", "paid",
                                                                "scheduled"]  # fmt: skip


async def test_worker_charges_the_late_fee_it_is_given(tmp_path: Path) -> None:
    """``--late-fee 5.00``: a declined installment past due is charged the fee."""
    url = f"sqlite:///{tmp_path / 'fees.db'}"
    weeks_ago = ManualClock(po.clock.utc_now() - timedelta(days=20))
    terms = po.PlanTerms(installments=2, interval=timedelta(days=14))
    async with await po.open_service(url, processor=instant_processor(), clock=weeks_ago) as svc:
        made = await svc.create_payment("ABCD-12345", "50.00", actor=ADMIN, plan=terms)
        await svc.confirm_payment(made.id, actor=ADMIN)
    args = ("worker", url, "--processor", "tests.children:declining_processor", "--once",
            "--late-fee", "5.00")  # fmt: skip
    for _ in range(2):  # the first tick's collection is declined; then it is overdue
        done = await _cli_async(*args)
        assert done.returncode == 0, done.stderr
    async with await po.open_service(url) as svc:
        plan = await svc.plan(made.id)
    assert plan.installments[1].status is po.InstallmentStatus.OVERDUE
    assert [(f.installment, f.amount) for f in plan.late_fees] == [(2, Decimal("5.00"))]


async def test_worker_takes_the_collection_policy(tmp_path: Path) -> None:
    """``--retry-days 2``: a soft decline is retried 2 days later; a code in
    ``--hard-declines`` stops collection. A bad policy is bad usage (exit 2)."""
    url = f"sqlite:///{tmp_path / 'collections.db'}"
    weeks_ago = ManualClock(po.clock.utc_now() - timedelta(days=15))
    terms = po.PlanTerms(installments=3, interval=timedelta(days=14))

    async def confirmed_plan() -> po.Payment:
        async with await po.open_service(url, processor=instant_processor(),
                                         clock=weeks_ago) as svc:  # fmt: skip
            made = await svc.create_payment("ABCD-12345", "30.00", actor=ADMIN, plan=terms)
            return await svc.confirm_payment(made.id, actor=ADMIN)

    args = ("worker", url, "--processor", "tests.children:declining_processor", "--once")
    soft = await confirmed_plan()
    done = await _cli_async(*args, "--retry-days", "2")
    assert done.returncode == 0, done.stderr
    hard = await confirmed_plan()
    done = await _cli_async(*args, "--hard-declines", "declined,card_lost")
    assert done.returncode == 0, done.stderr
    async with await po.open_service(url) as svc:
        soft_plan, hard_plan = await svc.plan(soft.id), await svc.plan(hard.id)
    second = soft_plan.installments[1]
    assert (second.attempts, second.last_decline) == (1, "declined")  # not retried yet
    assert timedelta(days=1.9) < second.next_attempt_at - po.clock.utc_now() <= timedelta(days=2)
    assert not soft_plan.collection_stopped
    assert hard_plan.collection_stopped
    assert hard_plan.installments[1].next_attempt_at is None
    bad = await _cli_async(*args, "--retry-days", "0")
    assert bad.returncode == 2
    assert "retries" in bad.stderr


class Collected:
    """A sink for ``paymentorch relay --sink tests.test_cli:Collected``."""

    events: ClassVar[list[po.PaymentEvent]] = []

    async def __call__(self, events: Sequence[po.PaymentEvent]) -> None:
        Collected.events.extend(events)


async def _pending_events(url: str) -> int:
    async with await po.open_service(url, create_schema=True) as service:
        payment = await service.create_payment("ABCD-12345", "10.00", actor=ADMIN)
        await service.confirm_payment(payment.id, actor=ADMIN)
    return 2


async def test_relay_once_says_what_it_delivered(tmp_path: Path) -> None:
    """``relay --once`` prints how many events it delivered and exits 0."""
    url = f"sqlite:///{tmp_path / 'events.db'}"
    await _pending_events(url)
    done = await _cli_async("relay", url, "--sink", "tests.test_cli:Collected", "--once")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "paymentorch: delivered 2 event(s)"


@pytest.mark.parametrize("broker", ["nats://127.0.0.1:1", "tests.test_cli:Refusing"])
async def test_relay_once_against_an_unreachable_broker_is_1(tmp_path: Path, broker: str) -> None:
    """A delivery that failed is work that failed: exit 1, one line why; nothing is lost."""
    if broker.startswith("nats:"):
        pytest.importorskip("nats", reason="the nats extra is not installed")
    url = f"sqlite:///{tmp_path / 'events.db'}"
    await _pending_events(url)
    done = await _cli_async("relay", url, "--sink", broker, "--once", "--timeout", "3")
    assert done.returncode == 1, done.stderr
    assert done.stdout.strip() == "paymentorch: delivered 0 event(s)"
    failures = [line for line in done.stderr.splitlines() if line.startswith("paymentorch:")]
    assert failures == [done.stderr.splitlines()[-1]]
    assert "event(s) not delivered" in failures[0]
    async with await po.open_service(url) as service:
        assert (await service.store.outbox_stats()).pending == 2


class Refusing:
    """A sink whose broker refuses every delivery, as one with wrong credentials does."""

    async def __call__(self, events: Sequence[po.PaymentEvent]) -> None:
        raise PermissionError("ACCESS_REFUSED - Login was refused")


async def _cli_async(*args: str) -> subprocess.CompletedProcess[str]:
    import asyncio

    return await asyncio.to_thread(cli, *args)


async def test_rebuild_exposure_recounts_a_damaged_figure(tmp_path: Path) -> None:
    """``rebuild-exposure URL`` repairs an exposure changed behind the library's back and
    says how many figures it corrected; a second run finds none."""
    import contextlib
    import sqlite3

    url = f"sqlite:///{tmp_path / 'exposure.db'}"
    async with await po.open_service(url) as service:
        await service.create_payment("ABCD-12345", "70.00", actor=ADMIN)
    with contextlib.closing(sqlite3.connect(tmp_path / "exposure.db")) as db, db:
        db.execute("UPDATE paymentorch_exposure SET amount = '0.01'")
    done = await _cli_async("rebuild-exposure", url)
    assert (done.returncode, done.stdout.strip()) == (0, "1 exposure figure(s) corrected")
    again = await _cli_async("rebuild-exposure", url)
    assert again.stdout.strip() == "0 exposure figure(s) corrected"
    credit = po.CreditPolicy.parse("100.00 USD")
    async with await po.open_service(url, credit=credit) as service:
        assert await service.credit_exposure("ABCD-12345") == Decimal("70.00")
