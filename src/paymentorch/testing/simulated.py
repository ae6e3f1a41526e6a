"""The seed design's simulated processor, honest about what it really executed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from uuid import UUID

import attrs

from paymentorch.domain.operations import OperationKind
from paymentorch.domain.processing import (
    Outcome,
    ProcessorCapabilities,
    ProcessorRequest,
    ProcessorResult,
)

Decision = tuple[ProcessorResult, bool]  # the answer, and whether money moved
# What money a request moves from the customer's side: in, out, or none (a hold).
_SIGN = {
    OperationKind.CHARGE: 1,
    OperationKind.CAPTURE: 1,
    OperationKind.INSTALLMENT: 1,
    OperationKind.REFUND: -1,
    OperationKind.AUTHORIZE: 0,
    OperationKind.CANCEL: 0,
}


@attrs.frozen
class Movement:
    """Money a processor really moved for one operation.

    Attributes:
        operation_id: The operation (the idempotency key it honoured).
        payment_id: The payment it was for.
        kind: What it was asked to do.
        amount: How much moved from the customer: positive for a charge, capture or
            installment, negative for a refund, 0 for an authorization or a void.
        currency: In which currency.
    """

    operation_id: UUID
    payment_id: UUID
    kind: OperationKind
    amount: Decimal
    currency: str


class SimulatedProcessor:
    """A processor in memory: 95% success after 1 to 5 s, as the seed design's was.

    It honours operation ids as idempotency keys: a repeated id returns the first answer
    and moves no money again. ``ledger`` counts, per operation id, how many times money
    really moved (declines are not executions): a correct system never shows a count
    above 1. With ``timeout_rate``, that share of calls time out (``execute`` raises
    ``TimeoutError``) and, of those, ``executed_on_timeout`` had moved the money before
    the answer was lost. ``refusing = True`` makes it refuse connections
    (``NOT_ATTEMPTED``) until set back; ``refuse_rate`` refuses that share of calls.
    ``decline_codes`` weighs the codes a decline carries (``{"insufficient_funds": 3,
    "card_stolen": 1}``: a quarter of declines are stolen cards), drawn from the same
    seeded generator; every decline says ``"declined"`` without it.

    ``shared`` names a file that keeps the answers and the ledger, so that several
    processes (workers killed and restarted, a test reading the ledger) act as one
    processor: each operation id is still decided once, in a file transaction.
    """

    capabilities = ProcessorCapabilities(lookup=True, not_found_means_not_executed=True)

    def __init__(
        self,
        success_rate: float = 0.95,
        latency: tuple[float, float] = (1.0, 5.0),
        timeout_rate: float = 0.0,
        executed_on_timeout: float = 0.5,
        seed: int | None = None,
        *,
        name: str = "simulated",
        refuse_rate: float = 0.0,
        shared: str | os.PathLike[str] | None = None,
        decline_codes: Mapping[str, float] | None = None,
    ) -> None:
        for label, rate in (
            ("success_rate", success_rate),
            ("timeout_rate", timeout_rate),
            ("executed_on_timeout", executed_on_timeout),
            ("refuse_rate", refuse_rate),
        ):
            if not 0 <= rate <= 1:
                raise ValueError(f"{label} must be between 0 and 1")
        if not 0 <= latency[0] <= latency[1]:
            raise ValueError("latency must be (low, high) seconds with 0 <= low <= high")
        codes = {"declined": 1.0} if decline_codes is None else dict(decline_codes)
        valid = all(isinstance(c, str) and c and w >= 0 for c, w in codes.items())
        if not valid or sum(codes.values()) <= 0:
            raise ValueError("decline_codes must map non-empty codes to weights >= 0, not all 0")
        self._codes, self._weights = list(codes), list(codes.values())
        self.name = name
        self.success_rate = success_rate
        self.latency = latency
        self.timeout_rate = timeout_rate
        self.executed_on_timeout = executed_on_timeout
        self.refuse_rate = refuse_rate
        self.refusing = False
        self._book: _MemoryBook | _FileBook = (
            _MemoryBook() if shared is None else _FileBook(os.fspath(shared), name)
        )
        self._random = random.Random(seed)

    @property
    def ledger(self) -> dict[UUID, int]:
        """How many times money moved, per operation id (only ids that moved any)."""
        return self._book.ledger()

    def movements(self) -> dict[UUID, Movement]:
        """What moved, per operation id (each id moves money once, however often asked)."""
        return self._book.movements()

    def moved(self, payment_id: UUID) -> Decimal:
        """The net amount this processor took from the customer for ``payment_id``:
        charges, captures and installments, less refunds."""
        found = (m.amount for m in self.movements().values() if m.payment_id == payment_id)
        return sum(found, Decimal(0))

    def answers(self) -> dict[UUID, ProcessorResult]:
        """Every answer decided so far, by operation id: what a webhook would report."""
        return self._book.answers()

    async def execute(self, request: ProcessorRequest) -> ProcessorResult:
        """Decide (once per operation id), after the simulated latency."""
        if self.refusing or (self.refuse_rate and self._random.random() < self.refuse_rate):
            return ProcessorResult(Outcome.NOT_ATTEMPTED, message="connection refused")
        timed_out = self._random.random() < self.timeout_rate
        if timed_out and self._random.random() >= self.executed_on_timeout:
            await self._wait()
            raise TimeoutError("the simulated processor did not answer")  # nothing moved
        # Decided on arrival, before any await: concurrent repeats of one id see one answer.
        answer = self._book.decide(request, lambda: self._decide(request))
        await self._wait()
        if timed_out:
            raise TimeoutError("the simulated processor answered too late")  # it was decided
        return answer

    def _decide(self, request: ProcessorRequest) -> Decision:
        if self._random.random() < self.success_rate:
            return ProcessorResult(Outcome.SUCCEEDED, reference=f"sim-{request.operation_id}"), True
        code = self._codes[0]
        if len(self._codes) > 1:  # one code draws nothing: seeded runs keep their sequence
            code = self._random.choices(self._codes, self._weights)[0]
        return ProcessorResult(Outcome.DECLINED, code=code, message=code.replace("_", " ")), False

    async def _wait(self) -> None:
        low, high = self.latency
        if high:
            await asyncio.sleep(self._random.uniform(low, high))

    async def lookup(self, request: ProcessorRequest) -> ProcessorResult:
        """The recorded answer for the operation id, or ``NOT_FOUND``."""
        if self.refusing:
            return ProcessorResult(Outcome.NOT_ATTEMPTED, message="connection refused")
        found = self._book.answer(request.operation_id)
        return ProcessorResult(Outcome.NOT_FOUND) if found is None else found

    def executions(self) -> int:
        """Money movements in all, over every operation."""
        return sum(self.ledger.values())


def _movement(request: ProcessorRequest) -> Movement:
    return Movement(
        request.operation_id,
        request.payment_id,
        request.kind,
        request.amount * _SIGN[request.kind],
        request.currency,
    )


class _MemoryBook:
    def __init__(self) -> None:
        self._answers: dict[UUID, ProcessorResult] = {}
        self._ledger: dict[UUID, int] = {}
        self._movements: dict[UUID, Movement] = {}

    def decide(self, request: ProcessorRequest, make: Callable[[], Decision]) -> ProcessorResult:
        operation_id = request.operation_id
        answer = self._answers.get(operation_id)
        if answer is None:
            answer, moved = make()
            self._answers[operation_id] = answer
            if moved:
                self._ledger[operation_id] = self._ledger.get(operation_id, 0) + 1
                self._movements[operation_id] = _movement(request)
        return answer

    def answer(self, operation_id: UUID) -> ProcessorResult | None:
        return self._answers.get(operation_id)

    def forget(self, operation_id: UUID) -> None:
        self._answers.pop(operation_id, None)

    def answers(self) -> dict[UUID, ProcessorResult]:
        return dict(self._answers)

    def ledger(self) -> dict[UUID, int]:
        return self._ledger

    def movements(self) -> dict[UUID, Movement]:
        return dict(self._movements)


class _FileBook:
    """Answers and ledger in a SQLite file, one row per (processor, operation id).

    ``executions`` counts every time a decision moved money: a correct processor, and a
    correct caller, never make it more than 1.
    """

    def __init__(self, path: str, processor: str) -> None:
        self._path = path
        self._processor = processor
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS answers (processor TEXT, operation_id TEXT,"
                " outcome TEXT, reference TEXT, code TEXT, message TEXT, executions INTEGER,"
                " payment_id TEXT, kind TEXT, amount TEXT, currency TEXT,"
                " PRIMARY KEY (processor, operation_id))"
            )

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # A connection per call: nothing to close, nothing carried across a fork.
        db = sqlite3.connect(self._path, timeout=30, isolation_level=None)
        try:
            yield db
        finally:
            db.close()

    def decide(self, request: ProcessorRequest, make: Callable[[], Decision]) -> ProcessorResult:
        operation_id = request.operation_id
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")  # one decider at a time, across processes
            try:
                answer = self._read(db, operation_id)
                if answer is None:
                    answer, moved = make()
                    db.execute(
                        "INSERT INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                        " ON CONFLICT DO UPDATE SET outcome = excluded.outcome,"
                        " reference = excluded.reference, code = excluded.code,"
                        " message = excluded.message,"
                        " executions = executions + excluded.executions",
                        (self._processor, str(operation_id), answer.outcome.value,
                         answer.reference, answer.code, answer.message, int(moved),
                         str(request.payment_id), request.kind.value, str(request.amount),
                         request.currency),
                    )  # fmt: skip
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return answer

    def _read(self, db: sqlite3.Connection, operation_id: UUID) -> ProcessorResult | None:
        row = db.execute(
            "SELECT outcome, reference, code, message FROM answers"
            " WHERE processor = ? AND operation_id = ? AND outcome IS NOT NULL",
            (self._processor, str(operation_id)),
        ).fetchone()
        return None if row is None else ProcessorResult(Outcome(row[0]), *row[1:])

    def answer(self, operation_id: UUID) -> ProcessorResult | None:
        with self._connect() as db:
            return self._read(db, operation_id)

    def forget(self, operation_id: UUID) -> None:
        with self._connect() as db:
            db.execute(
                "UPDATE answers SET outcome = NULL WHERE processor = ? AND operation_id = ?",
                (self._processor, str(operation_id)),
            )

    def answers(self) -> dict[UUID, ProcessorResult]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT operation_id, outcome, reference, code, message FROM answers"
                " WHERE processor = ? AND outcome IS NOT NULL",
                (self._processor,),
            ).fetchall()
        return {UUID(r[0]): ProcessorResult(Outcome(r[1]), *r[2:]) for r in rows}

    def ledger(self) -> dict[UUID, int]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT operation_id, executions FROM answers"
                " WHERE processor = ? AND executions > 0",
                (self._processor,),
            ).fetchall()
        return {UUID(r[0]): r[1] for r in rows}

    def movements(self) -> dict[UUID, Movement]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT operation_id, payment_id, kind, amount, currency FROM answers"
                " WHERE processor = ? AND executions > 0",
                (self._processor,),
            ).fetchall()
        requests = (
            ProcessorRequest(UUID(o), OperationKind(k), UUID(p), Decimal(a), c)
            for o, p, k, a, c in rows
        )
        return {r.operation_id: _movement(r) for r in requests}
