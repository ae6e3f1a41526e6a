"""PaymentService: the facade. Each public method is a span and one call to a use case
(``paymentorch.usecases``), where the work is done."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from types import TracebackType
from typing import Self
from uuid import UUID

from opentelemetry import metrics, trace

from paymentorch.clock import utc_now
from paymentorch.domain import (
    Actor,
    AuditEntry,
    NewPayment,
    Operation,
    Payment,
    PaymentStatus,
    RolePolicy,
    ValidationError,
    ValidationPolicy,
)
from paymentorch.domain.collections import AgingReport, CollectionPolicy, PlanPage
from paymentorch.domain.credit import CreditPolicy
from paymentorch.domain.integrity import IntegrityReport
from paymentorch.domain.ledger import Account, AccountKind, JournalEntry
from paymentorch.domain.orchestration import Step
from paymentorch.domain.plans import LateFeePolicy, Plan, PlanTerms
from paymentorch.domain.processing import Outcome, ProcessorResult
from paymentorch.domain.results import BulkResult, HealthReport, Page, PaymentSummary
from paymentorch.domain.validation import KEY_RETENTION
from paymentorch.ports import Cache, PaymentProcessor, PaymentStore

# Relative: the blocking twin imports its own use cases.
from .usecases import (
    books,
    collections,
    creation,
    dunning,
    lifecycle,
    maintenance,
    plans,
    processing,
    queries,
    refunds,
)  # fmt: skip
from .usecases.context import Context


class PaymentService:
    """Payments with a strict state machine, idempotent creation, an audit trail and events.

    Build it with ``open_service(url)``, or compose it by hand around any
    ``PaymentStore`` (by hand, ``cache`` defaults to None: no cache). Closing the
    service closes its store. The async service belongs to one event loop; the
    blocking twin, ``SyncPaymentService``, generated from it, is safe to share between
    threads and survives ``fork()``.
    """

    def __init__(
        self,
        store: PaymentStore,
        *,
        cache: Cache | None = None,
        policy: RolePolicy | None = None,
        validation: ValidationPolicy | None = None,
        default_currency: str = "USD",
        clock: Callable[[], datetime] = utc_now,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        outbox_lag_threshold: timedelta = timedelta(seconds=60),
        processor: PaymentProcessor | None = None,
        credit: CreditPolicy | None = None,
        late_fees: LateFeePolicy | Iterable[LateFeePolicy] | None = None,
        collections: CollectionPolicy | None = None,
    ) -> None:
        self._ctx = Context.build(
            store, cache=cache, policy=policy, validation=validation,
            default_currency=default_currency, clock=clock, tracer_provider=tracer_provider,
            meter_provider=meter_provider, lag_threshold=outbox_lag_threshold,
            processor=processor, credit=credit, late_fees=late_fees, collections=collections,
        )  # fmt: skip
        self._span = self._ctx.telemetry.operation

    @property
    def context(self) -> Context:
        """What the use cases share (``paymentorch.usecases``): the worker and the
        command line call the use cases with it, never the store directly."""
        return self._ctx

    @property
    def store(self) -> PaymentStore:
        """The backend behind the service (for ``OutboxRelay`` and maintenance)."""
        return self._ctx.store

    @property
    def processor(self) -> PaymentProcessor | None:
        """The processor money moves through (``PaymentWorker`` calls it), if any."""
        return self._ctx.processor

    @property
    def clock(self) -> Callable[[], datetime]:
        """The service's clock, which its worker and relay read too."""
        return self._ctx.clock

    @property
    def cache(self) -> Cache | None:
        """The cache in front of ``get_payment``, if any."""
        return self._ctx.cache

    # -- creating ---------------------------------------------------------------

    async def create_payment(
        self, customer_id: str, amount: Decimal | int | str, *, actor: Actor,
        currency: str | None = None, idempotency_key: str | None = None,
        metadata: Mapping[str, str] | None = None, capture_method: str | None = None,
        plan: PlanTerms | None = None,
    ) -> Payment:  # fmt: skip
        """Create a Pending payment, or return the one made with ``idempotency_key``. With a
        processor, ``capture_method`` queues a charge (``automatic``; on a ``plan``,
        installment 1) or an authorization (``manual``) for ``PaymentWorker``.

        Raises:
            PermissionDenied, ValidationError, IdempotencyConflict, CreditLimitExceeded.
        """
        payment, _ = await self.create_or_get_payment(
            customer_id, amount, actor=actor, currency=currency, idempotency_key=idempotency_key,
            metadata=metadata, capture_method=capture_method, plan=plan,
        )  # fmt: skip
        return payment

    async def create_or_get_payment(
        self, customer_id: str, amount: Decimal | int | str, *, actor: Actor,
        currency: str | None = None, idempotency_key: str | None = None,
        metadata: Mapping[str, str] | None = None, capture_method: str | None = None,
        plan: PlanTerms | None = None,
    ) -> tuple[Payment, bool]:  # fmt: skip
        """``create_payment``, saying whether this call created the payment (``False``: a
        repeat of an earlier request with the same key)."""
        with self._span("create_payment"):
            return await creation.create(
                self._ctx, customer_id, amount, actor=actor, currency=currency,
                idempotency_key=idempotency_key, metadata=metadata,
                capture_method=capture_method, plan=plan,
            )  # fmt: skip

    async def create_payments(self, items: Sequence[NewPayment], *, actor: Actor) -> list[Payment]:
        """Create many payments in one transaction: all of them or none (a key already
        held raises ``IdempotencyConflict``)."""
        with self._span("create_payments"):
            return await creation.create_many(self._ctx, items, actor=actor)

    # -- reading ----------------------------------------------------------------

    async def get_payment(self, payment_id: UUID | str) -> Payment:
        """The payment with this id, through the cache. Raises ``PaymentNotFound``."""
        with self._span("get_payment"):
            return await queries.get(self._ctx, payment_id)

    async def list_payments(
        self, *, status: PaymentStatus | str | None = None, customer_id: str | None = None,
        limit: int = 50, cursor: str | None = None, created_from: datetime | None = None,
        created_to: datetime | None = None,
    ) -> Page:  # fmt: skip
        """One page of payments, newest first; pass ``page.next_cursor`` for the next one.
        ``created_from`` (inclusive) and ``created_to`` (exclusive) bound the creation time."""
        with self._span("list_payments"):
            return await queries.page(
                self._ctx, status=status, customer_id=customer_id, limit=limit, cursor=cursor,
                created_from=created_from, created_to=created_to,
            )  # fmt: skip

    async def count_payments(
        self, *, status: PaymentStatus | str | None = None, customer_id: str | None = None,
        created_from: datetime | None = None, created_to: datetime | None = None,
    ) -> int:  # fmt: skip
        """How many payments match the filters."""
        with self._span("count_payments"):
            return await queries.count(
                self._ctx, status=status, customer_id=customer_id, created_from=created_from,
                created_to=created_to,
            )  # fmt: skip

    async def summarize_payments(
        self, *, customer_id: str | None = None, created_from: datetime | None = None,
        created_to: datetime | None = None,
    ) -> PaymentSummary:  # fmt: skip
        """Counts by status, exact totals by currency and counts by day, for a dashboard."""
        with self._span("summarize_payments"):
            return await queries.summary(
                self._ctx, customer_id=customer_id, created_from=created_from,
                created_to=created_to,
            )  # fmt: skip

    async def audit_trail(self, payment_id: UUID | str) -> list[AuditEntry]:
        """Every change to the payment, oldest first. Raises ``PaymentNotFound``."""
        with self._span("audit_trail"):
            return await queries.audit_trail(self._ctx, payment_id)

    async def operations(self, payment_id: UUID | str) -> list[Operation]:
        """The payment's money movements, oldest first. Raises ``PaymentNotFound``."""
        with self._span("operations"):
            return await queries.operations(self._ctx, payment_id)

    async def plan(self, payment_id: UUID | str) -> Plan:
        """The payment's installment plan: its status, installments and late fees.

        Raises:
            PaymentNotFound; ValidationError: the payment is not paid in installments.
        """
        with self._span("plan"):
            return await queries.plan(self._ctx, payment_id)

    async def credit_exposure(self, customer_id: str) -> Decimal:
        """What ``customer_id`` owes now in the credit policy's currency: Pending and
        Authorized payments, and unpaid installments (0 without a credit policy)."""
        with self._span("credit_exposure"):
            return await queries.exposure(self._ctx, customer_id)

    async def operations_needing_attention(self, limit: int = 100) -> list[Operation]:
        """Operations whose outcome no lookup could settle: a person decides them."""
        with self._span("operations_needing_attention"):
            return await queries.needing_attention(self._ctx, limit)

    async def aging_report(self, as_of: datetime | None = None) -> AgingReport:
        """Running plans by days past due (``current``, ``1-29``, ``30-59``, ``60-89``,
        ``90+``): how many, and their unpaid installments per currency; unpaid fees apart.
        ``as_of`` (now when None) measures today's plans at that time."""
        with self._span("aging_report"):
            return await collections.report(self._ctx, as_of)

    async def delinquent_plans(self, limit: int = 50, cursor: str | None = None) -> PlanPage:
        """One page of plans at least a day past due, most days first (ties by payment
        id); pass ``page.next_cursor`` for the next one."""
        with self._span("delinquent_plans"):
            return await collections.delinquent(self._ctx, limit, cursor)

    # -- changing ---------------------------------------------------------------

    async def confirm_payment(
        self, payment_id: UUID | str, *, actor: Actor, idempotency_key: str | None = None
    ) -> Payment:
        """Pending -> Confirmed, capturing the whole amount.

        A repeat with the same ``idempotency_key`` (scoped by the actor, as a creation's)
        returns the payment as the first call left it; so do the other transitions.

        Raises:
            PermissionDenied, PaymentNotFound, InvalidTransition.
            IdempotencyConflict: the key was used on another payment, for another
                action, or with other parameters.
        """
        with self._span("confirm_payment"):
            return await lifecycle.change(self._ctx, "confirm", payment_id, actor,
                                          key=idempotency_key)  # fmt: skip

    async def authorize_payment(
        self, payment_id: UUID | str, *, actor: Actor, idempotency_key: str | None = None
    ) -> Payment:
        """Pending -> Authorized: the money is held, to be captured later."""
        with self._span("authorize_payment"):
            return await lifecycle.change(self._ctx, "authorize", payment_id, actor,
                                          key=idempotency_key)  # fmt: skip

    async def capture_payment(
        self, payment_id: UUID | str, *, actor: Actor, amount: Decimal | int | str | None = None,
        idempotency_key: str | None = None,
    ) -> Payment:  # fmt: skip
        """Authorized -> Confirmed, taking ``amount`` (all of it when None); the rest of the
        authorization is released. Queued when a processor holds the money.

        Raises:
            PermissionDenied, PaymentNotFound, InvalidTransition, ValidationError,
            IdempotencyConflict; AmountExceeded: more than was authorized.
        """
        with self._span("capture_payment"):
            return await lifecycle.change(self._ctx, "capture", payment_id, actor, amount=amount,
                                          key=idempotency_key)  # fmt: skip

    async def fail_payment(
        self, payment_id: UUID | str, *, reason: str, actor: Actor,
        idempotency_key: str | None = None,
    ) -> Payment:  # fmt: skip
        """Pending or Authorized -> Failed, keeping ``reason`` (1 to 500 characters). An
        authorization a processor holds is voided through it; refused while a capture or
        void is under way."""
        with self._span("fail_payment"):
            return await lifecycle.change(self._ctx, "fail", payment_id, actor, reason=reason,
                                          key=idempotency_key)  # fmt: skip

    async def cancel_payment(
        self, payment_id: UUID | str, *, actor: Actor, reason: str | None = None,
        idempotency_key: str | None = None,
    ) -> Payment:  # fmt: skip
        """Pending -> Cancelled, or Authorized -> Cancelled (a void)."""
        with self._span("cancel_payment"):
            return await lifecycle.change(self._ctx, "cancel", payment_id, actor, reason=reason,
                                          key=idempotency_key)  # fmt: skip

    async def confirm_payments(
        self, payment_ids: Iterable[UUID | str], *, actor: Actor
    ) -> BulkResult:
        """Confirm every Pending payment among ``payment_ids``; report why others were skipped."""
        with self._span("confirm_payments"):
            return await lifecycle.confirm_many(self._ctx, payment_ids, actor=actor)

    async def refund_payment(
        self, payment_id: UUID | str, amount: Decimal | int | str | None = None, *, actor: Actor,
        reason: str | None = None, idempotency_key: str | None = None,
    ) -> Operation:  # fmt: skip
        """Give back ``amount`` (what is left when None) of a Confirmed payment; Refunded
        once everything captured is. The same ``idempotency_key`` returns the same refund.

        Raises:
            PermissionDenied, PaymentNotFound, ValidationError, IdempotencyConflict,
            InvalidTransition (not Confirmed), AmountExceeded (more than is left).
        """
        with self._span("refund_payment"):
            return await refunds.give_back(
                self._ctx, payment_id, amount, actor=actor, reason=reason,
                idempotency_key=idempotency_key,
            )  # fmt: skip

    # -- installment plans ------------------------------------------------------

    async def pay_installment(self, payment_id: UUID | str, number: int, *, actor: Actor) -> Plan:
        """Record installment ``number`` paid by hand, with its late fees (ADMIN).

        Raises:
            PermissionDenied, PaymentNotFound; ValidationError: no such installment, not
                owed, or money for it (a collection, a refund of the plan) under way.
        """
        with self._span("pay_installment"):
            return await plans.settle_installment(self._ctx, payment_id, number, actor, None)

    async def waive_installment(
        self, payment_id: UUID | str, number: int, *, actor: Actor, reason: str
    ) -> Plan:
        """Forgive installment ``number`` and its unpaid fees, with ``reason`` in the audit
        trail (ADMIN). Raises as ``pay_installment``, and ``ValidationError`` for no reason.
        """
        with self._span("waive_installment"):
            if errors := self._ctx.validation.check_reason(reason, required=True):
                raise ValidationError(errors)
            return await plans.settle_installment(self._ctx, payment_id, number, actor, reason)

    async def charge_off(self, payment_id: UUID | str, *, actor: Actor, reason: str) -> Plan:
        """Give up on collecting the plan (ADMIN): it becomes ``charged_off``, collection
        and late fees stop, and what it still owes is written off, with ``reason`` (1 to
        500 characters) in the audit trail. The customer still owes it (exposure keeps
        counting it); a later ``pay_installment`` is a recovery.

        Raises:
            PermissionDenied, PaymentNotFound; InvalidTransition: not Confirmed, or no
                running plan (charged off already, completed, cancelled); ValidationError:
                no reason, or a collection or refund of the plan under way.
        """
        with self._span("charge_off"):
            return await plans.charge_off(self._ctx, payment_id, actor, reason)

    async def resume_collection(self, payment_id: UUID | str, *, actor: Actor) -> Plan:
        """Resume the automatic collection of a plan whose collection stopped (a hard
        decline, or the retry ladder ran out) (ADMIN): what is due is collected at the
        worker's next tick, each installment on a new ladder.

        Raises:
            PermissionDenied, PaymentNotFound; InvalidTransition: no running plan, or its
                collection did not stop.
        """
        with self._span("resume_collection"):
            return await dunning.resume(self._ctx, payment_id, actor)

    async def collect_installments(self, limit: int = 100) -> int:
        """Queue the collection of installments due now for the worker: per plan with
        none under way, its oldest installment due never tried or whose retry (by the
        ``collections`` policy) is due; how many were queued."""
        with self._span("collect_installments"):
            return await plans.collect_due(self._ctx, limit)

    async def process_overdue(self) -> int:
        """Mark late installments overdue and charge the late-fee policies' fees, on the
        service's clock (no actor: the worker calls it); how many plans changed."""
        with self._span("process_overdue"):
            return await plans.overdue(self._ctx)

    async def process_collections(self) -> int:
        """Write the reminders due and charge off plans past ``charge_off_after``, by the
        ``collections`` policy, on the service's clock (no actor: the worker calls it);
        how many plans changed (none without a policy)."""
        with self._span("process_collections"):
            return await dunning.process(self._ctx)

    # -- processors -------------------------------------------------------------

    async def settle_operation(self, previous: Operation, step: Step, *, actor: Actor) -> bool:
        """Record ``step`` (a processor's answer, decided) with the payment's change, both
        or neither; ``False`` when someone settled the operation meanwhile."""
        with self._span("settle_operation"):
            return await processing.settle(self._ctx, previous, step, actor=actor)

    async def resolve_operation(
        self, operation_id: UUID | str, outcome: Outcome | str, *, actor: Actor, reason: str
    ) -> Operation:
        """Settle an operation whose outcome is unknown (``succeeded`` or ``declined``), as
        a person found it out; the audit entry names ``actor`` and ``reason``.

        Raises:
            PermissionDenied; ValidationError: a bad argument, a missing operation, or one
                that is not unknown or needing attention.
        """
        with self._span("resolve_operation"):
            return await processing.resolve(self._ctx, operation_id, outcome, actor=actor,
                                            reason=reason)  # fmt: skip

    async def record_processor_event(
        self, processor: str, event_id: str, *, result: ProcessorResult,
        operation_id: UUID | str | None = None, reference: str | None = None,
    ) -> bool:  # fmt: skip
        """Apply a processor's callback (a webhook) once, found by ``operation_id`` or
        ``reference``; say whether ``(processor, event_id)`` was new. A final answer
        settles a waiting operation; a conflicting late one needs a person.

        Raises:
            ValidationError; PermissionDenied: the operation was sent to another
                processor, or not sent yet (nothing is recorded).
        """
        with self._span("record_processor_event"):
            return await processing.record_callback(
                self._ctx, processor, event_id, result=result, operation_id=operation_id,
                reference=reference,
            )  # fmt: skip

    # -- the books --------------------------------------------------------------

    async def journal(self, payment_id: UUID | str) -> list[JournalEntry]:
        """The payment's journal entries, oldest first. Raises ``PaymentNotFound``."""
        with self._span("journal"):
            return await books.journal(self._ctx, payment_id)

    async def balance(self, account: Account) -> Decimal:
        """The account's balance: debits less credits (0 for one never posted to)."""
        with self._span("balance"):
            return await books.balance(self._ctx, account)

    async def trial_balance(self) -> dict[tuple[AccountKind, str], Decimal]:
        """Totals by account kind and currency, summing to zero in each currency."""
        with self._span("trial_balance"):
            return await books.trial_balance(self._ctx)

    async def verify(self) -> IntegrityReport:
        """Check that every payment agrees with its audit trail, events, journal and plan,
        that the books balance and that exposure is what is owed; read-only, in batches."""
        with self._span("verify"):
            return await books.verify(self._ctx)

    # -- maintenance ------------------------------------------------------------

    async def purge_idempotency_keys(self, older_than: timedelta = KEY_RETENTION) -> int:
        """Release idempotency keys held more than ``older_than`` (24 hours at least); a
        purged payment's ``idempotency_key`` reads None."""
        with self._span("purge_idempotency_keys"):
            return await maintenance.purge_keys(self._ctx, older_than)

    async def rebuild_exposure(self) -> int:
        """Recount every customer's exposure from payments and plans (maintenance, no
        actor); how many (customer, currency) figures were wrong."""
        with self._span("rebuild_exposure"):
            return await maintenance.rebuild_exposure(self._ctx)

    async def health(self) -> HealthReport:
        """Store round trip, outbox lag and operations needing a person: ``ok``,
        ``degraded`` or ``down`` (never with the driver's text)."""
        with self._span("health"):
            return await maintenance.health(self._ctx)

    async def aclose(self) -> None:
        """Close the store (connections, threads)."""
        await self._ctx.store.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        await self.aclose()
