"""PaymentService: the one place that orchestrates the store, the cache and the domain."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import TracebackType
from typing import Self, cast
from uuid import UUID

import attrs
from opentelemetry import metrics, trace

from paymentorch._kinds import require_async
from paymentorch.clock import utc_now
from paymentorch.domain import (
    Actor,
    AmountExceeded,
    AuditEntry,
    Change,
    FieldError,
    IdempotencyConflict,
    InvalidTransition,
    NewPayment,
    Operation,
    OperationKind,
    OperationStatus,
    Payment,
    PaymentError,
    PaymentNotFound,
    PaymentStatus,
    PermissionDenied,
    RolePolicy,
    StoreError,
    ValidationError,
    ValidationPolicy,
    ValidPayment,
    current_correlation_id,
    parse_payment_id,
    record_change,
    refund,
    reserve_refund,
    touched,
    transition,
    uuid7,
    with_plan,
)
from paymentorch.domain.credit import CreditPolicy, exposure_of
from paymentorch.domain.cursor import Keyset, decode_cursor, encode_cursor
from paymentorch.domain.money import currency_exponent
from paymentorch.domain.orchestration import (
    Step,
    already_there,
    capture_method_of,
    collector_of,
    from_callback,
    installment_key,
    installment_of,
    original_of,
    resolved,
    settle_payment,
)
from paymentorch.domain.plans import (
    LateFeePolicy,
    Plan,
    PlanEvents,
    PlanStatus,
    PlanTerms,
    after_payment,
    fee_policies,
    mark_overdue,
    new_plan,
    pay,
    refund_on_plan,
    waive,
)
from paymentorch.domain.processing import Outcome, ProcessorResult
from paymentorch.domain.requests import replay, request_key
from paymentorch.domain.results import (
    BulkResult,
    HealthReport,
    HealthStatus,
    Page,
    PaymentSummary,
)
from paymentorch.domain.validation import (
    KEY_RETENTION,
    MAX_ATTEMPTS,
    MAX_PAGE,
    check_filters,
    check_period,
    parse_ids,
    same_refund,
    same_request,
)
from paymentorch.ports import Cache, PaymentProcessor, PaymentStore
from paymentorch.telemetry import Telemetry

logger = logging.getLogger("paymentorch")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
UNSETTLED = frozenset({OperationStatus.UNKNOWN, OperationStatus.NEEDS_ATTENTION})
HELD_ACTIONS = frozenset({"capture", "cancel", "fail"})
"""Actions on an Authorized payment that go through the processor holding its money."""
WAITING = frozenset(
    {OperationStatus.PENDING, OperationStatus.UNKNOWN, OperationStatus.NEEDS_ATTENTION}
)
PLAN_MONEY = frozenset({OperationKind.INSTALLMENT, OperationKind.REFUND})
"""Operations that move a plan's money after its purchase: a refund waits while one of
them is under way, so that an installment is paid for exactly what was collected."""


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
    ) -> None:
        if (
            not isinstance(default_currency, str)
            or currency_exponent(default_currency.upper()) is None
        ):
            raise ValidationError(
                [
                    FieldError(
                        "default_currency",
                        f"{default_currency!r} is not an active ISO 4217 currency",
                        "unknown",
                    )
                ]
            )
        require_async(store, "store", "get")
        require_async(cache, "cache", "get")
        self._store = store
        self._processor = processor
        self._credit = credit
        self._late_fees = fee_policies(late_fees, default_currency.upper())
        self._cache = cache
        self._policy = policy or RolePolicy()
        self._validation = validation or ValidationPolicy()
        self._clock = clock
        self._lag_threshold = outbox_lag_threshold
        self._telemetry = Telemetry(
            backend=store.backend, tracer_provider=tracer_provider, meter_provider=meter_provider
        )
        self._default_currency = default_currency.upper()

    @property
    def store(self) -> PaymentStore:
        """The backend behind the service (for ``OutboxRelay`` and maintenance)."""
        return self._store

    @property
    def processor(self) -> PaymentProcessor | None:
        """The processor money moves through (``PaymentWorker`` calls it), if any."""
        return self._processor

    @property
    def clock(self) -> Callable[[], datetime]:
        """The service's clock, which its worker and relay read too."""
        return self._clock

    @property
    def cache(self) -> Cache | None:
        """The cache in front of ``get_payment``, if any."""
        return self._cache

    # -- creating ---------------------------------------------------------------

    async def create_payment(
        self,
        customer_id: str,
        amount: Decimal | int | str,
        *,
        actor: Actor,
        currency: str | None = None,
        idempotency_key: str | None = None,
        metadata: Mapping[str, str] | None = None,
        capture_method: str | None = None,
        plan: PlanTerms | None = None,
    ) -> Payment:
        """Create a Pending payment, or return the one already made with ``idempotency_key``.

        With a processor, ``capture_method="automatic"`` queues a charge and ``"manual"``
        an authorization, in the creation's own transaction; ``PaymentWorker`` carries
        them out and confirms, authorizes or fails the payment by the processor's answer.

        Raises:
            PermissionDenied: the actor may not create payments.
            ValidationError: any input broke a rule (every problem is listed).
            IdempotencyConflict: the key was used with other parameters.
        """
        payment, _ = await self.create_or_get_payment(
            customer_id,
            amount,
            actor=actor,
            currency=currency,
            idempotency_key=idempotency_key,
            metadata=metadata,
            capture_method=capture_method,
            plan=plan,
        )
        return payment

    async def create_or_get_payment(
        self,
        customer_id: str,
        amount: Decimal | int | str,
        *,
        actor: Actor,
        currency: str | None = None,
        idempotency_key: str | None = None,
        metadata: Mapping[str, str] | None = None,
        capture_method: str | None = None,
        plan: PlanTerms | None = None,
    ) -> tuple[Payment, bool]:
        """``create_payment``, saying whether this call created the payment.

        ``(payment, False)`` is a repeat of an earlier request with the same key: an HTTP
        host answers it as the original (``Idempotent-Replayed: true``).
        """
        with self._telemetry.operation("create_payment") as span:
            self._policy.check(actor, "create")
            self._check_capture_method(capture_method)
            if plan is not None and not isinstance(cast(object, plan), PlanTerms):
                raise ValidationError([FieldError("plan", "must be a PlanTerms", "type")])
            valid = self._validation.validate_payment(
                NewPayment(customer_id, amount, currency, idempotency_key, metadata),
                default_currency=self._default_currency,
            )
            change = self._creation(valid, actor, capture_method, plan)
            existing = await self._store.add(change)
            if existing is not None:
                await self._same_creation(existing, valid, plan, capture_method)
                Telemetry.describe(span, existing)
                return existing, False
            payment = change.payment
            await self._cache_set(payment)
            Telemetry.describe(span, payment)
            self._telemetry.payments_created((payment,))
            return payment, True

    async def create_payments(self, items: Sequence[NewPayment], *, actor: Actor) -> list[Payment]:
        """Create many payments in one transaction: all of them or none.

        A key that is already held raises ``IdempotencyConflict`` and creates nothing.
        """
        with self._telemetry.operation("create_payments"):
            self._policy.check(actor, "create_payments")
            valid: list[ValidPayment] = []
            errors: list[FieldError] = []
            seen_keys: dict[str, int] = {}
            for index, item in enumerate(cast(Sequence[object], items)):  # checked at run time
                prefix = f"items[{index}]."
                if not isinstance(item, NewPayment):
                    errors.append(FieldError(prefix[:-1], "must be a NewPayment", "type"))
                    continue
                checked, problems = self._validation.check_payment(
                    item, default_currency=self._default_currency, prefix=prefix
                )
                errors.extend(problems)
                key = item.idempotency_key
                if isinstance(key, str) and key in seen_keys:
                    errors.append(
                        FieldError(
                            prefix + "idempotency_key",
                            f"repeats the key of items[{seen_keys[key]}]",
                            "duplicate",
                        )
                    )
                elif isinstance(key, str):
                    seen_keys[key] = index
                if checked is not None:
                    valid.append(checked)
            if errors:
                raise ValidationError(errors)
            changes = [self._creation(v, actor) for v in valid]
            if changes:
                await self._store.add_many(changes)
            payments = [c.payment for c in changes]
            self._telemetry.payments_created(payments)
            return payments

    async def _same_creation(
        self,
        existing: Payment,
        valid: ValidPayment,
        terms: PlanTerms | None,
        capture_method: str | None,
    ) -> None:
        """Check that a repeat of a creation key asks for what it was created with: the
        payment, its plan and its capture method.

        Raises:
            IdempotencyConflict: it differs.
        """
        key = valid.idempotency_key or ""
        same_request(existing, valid, key)
        stored = await self._store.plan(existing.id) if existing.has_plan else None
        if (None if stored is None else stored.terms) != terms:
            raise IdempotencyConflict(key, "differs in plan")
        if capture_method_of(await self._store.operations(existing.id)) != capture_method:
            raise IdempotencyConflict(key, "differs in capture_method")

    def _creation(
        self,
        valid: ValidPayment,
        actor: Actor,
        capture_method: str | None = None,
        terms: PlanTerms | None = None,
    ) -> Change:
        now = self._clock()
        payment = Payment(
            id=uuid7(),
            customer_id=valid.customer_id,
            amount=valid.amount,
            currency=valid.currency,
            status=PaymentStatus.PENDING,
            created_at=now,
            updated_at=now,
            version=1,
            idempotency_key=valid.idempotency_key,
            metadata=valid.metadata,
            has_plan=terms is not None,
        )
        plan = None
        if terms is not None:  # the schedule is stored with the payment, pending
            plan = new_plan(payment.id, payment.amount, payment.currency, terms, now)
        intent = None
        if capture_method is not None:  # the processor is asked by the worker, not here
            # A plan takes installment 1 from the customer, never the order.
            automatic = capture_method == "automatic"
            kind = OperationKind.CHARGE if automatic else OperationKind.AUTHORIZE
            amount, number = payment.amount, None
            if plan is not None:
                amount = plan.installments[0].amount
                if kind is OperationKind.CHARGE:
                    kind, number = OperationKind.INSTALLMENT, 1
            intent = Operation(
                id=uuid7(),
                payment_id=payment.id,
                kind=kind,
                amount=amount,
                currency=payment.currency,
                status=OperationStatus.PENDING,
                created_at=now,
                updated_at=now,
                due_at=now,
                installment=number,
                idempotency_key=None if number is None else installment_key(number),
            )
        change = record_change(
            payment,
            "created",
            from_status=None,
            actor_id=actor.id,
            correlation_id=current_correlation_id(),
            operation=intent,
        )
        if plan is not None:
            change = with_plan(change, plan)
        return self._with_credit(change, None)

    # -- reading ----------------------------------------------------------------

    async def get_payment(self, payment_id: UUID | str) -> Payment:
        """The payment with this id, through the cache.

        Raises:
            PaymentNotFound: no payment has this id.
        """
        with self._telemetry.operation("get_payment") as span:
            payment = await self._load(parse_payment_id(payment_id))
            Telemetry.describe(span, payment)
            return payment

    async def list_payments(
        self,
        *,
        status: PaymentStatus | str | None = None,
        customer_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
    ) -> Page:
        """One page of payments, newest first; pass ``page.next_cursor`` for the next one.

        ``created_from`` (inclusive) and ``created_to`` (exclusive) bound the creation time.
        """
        with self._telemetry.operation("list_payments"):
            errors: list[FieldError] = []
            wanted = check_filters(status, customer_id, errors)
            check_period(created_from, created_to, errors)
            if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
                errors.append(
                    FieldError("limit", f"must be an integer from 1 to {MAX_PAGE}", "range")
                )
            after: Keyset | None = None
            if cursor is not None:
                decoded = decode_cursor(cursor)
                if isinstance(decoded, FieldError):
                    errors.append(decoded)
                else:
                    after = decoded
            if errors:
                raise ValidationError(errors)
            items = await self._store.list_payments(
                status=wanted,
                customer_id=customer_id,
                limit=limit + 1,
                after=after,
                created_from=created_from,
                created_to=created_to,
            )
            if len(items) > limit:
                return Page(items[:limit], encode_cursor(items[limit - 1]))
            return Page(items, None)

    async def count_payments(
        self,
        *,
        status: PaymentStatus | str | None = None,
        customer_id: str | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
    ) -> int:
        """How many payments match the filters."""
        with self._telemetry.operation("count_payments"):
            errors: list[FieldError] = []
            wanted = check_filters(status, customer_id, errors)
            check_period(created_from, created_to, errors)
            if errors:
                raise ValidationError(errors)
            return await self._store.count(
                status=wanted,
                customer_id=customer_id,
                created_from=created_from,
                created_to=created_to,
            )

    async def summarize_payments(
        self,
        *,
        customer_id: str | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
    ) -> PaymentSummary:
        """Counts by status, exact totals by currency and counts by day, for a dashboard."""
        with self._telemetry.operation("summarize_payments"):
            errors: list[FieldError] = []
            check_filters(None, customer_id, errors)
            check_period(created_from, created_to, errors)
            if errors:
                raise ValidationError(errors)
            rows = await self._store.summarize(
                customer_id=customer_id, created_from=created_from, created_to=created_to
            )
            return PaymentSummary.of(rows)

    async def audit_trail(self, payment_id: UUID | str) -> list[AuditEntry]:
        """Every change to the payment, oldest first.

        Raises:
            PaymentNotFound: no payment has this id.
        """
        with self._telemetry.operation("audit_trail"):
            pid = parse_payment_id(payment_id)
            trail = await self._store.audit_trail(pid)
            if not trail:
                raise PaymentNotFound(pid)  # every payment has its creation entry
            return trail

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
        with self._telemetry.operation("confirm_payment") as span:
            return await self._change(span, "confirm", payment_id, actor, key=idempotency_key)

    async def authorize_payment(
        self, payment_id: UUID | str, *, actor: Actor, idempotency_key: str | None = None
    ) -> Payment:
        """Pending -> Authorized: the money is held, to be captured later.

        Raises:
            PermissionDenied, PaymentNotFound, InvalidTransition, IdempotencyConflict.
        """
        with self._telemetry.operation("authorize_payment") as span:
            return await self._change(span, "authorize", payment_id, actor, key=idempotency_key)

    async def capture_payment(
        self,
        payment_id: UUID | str,
        *,
        actor: Actor,
        amount: Decimal | int | str | None = None,
        idempotency_key: str | None = None,
    ) -> Payment:
        """Authorized -> Confirmed, taking ``amount`` (all of it when None); the rest of the
        authorization is released.

        Raises:
            PermissionDenied, PaymentNotFound, InvalidTransition, ValidationError.
            AmountExceeded: more than was authorized.
            IdempotencyConflict: see ``confirm_payment``.
        """
        with self._telemetry.operation("capture_payment") as span:
            return await self._change(
                span, "capture", payment_id, actor, amount=amount, key=idempotency_key
            )

    async def fail_payment(
        self,
        payment_id: UUID | str,
        *,
        reason: str,
        actor: Actor,
        idempotency_key: str | None = None,
    ) -> Payment:
        """Pending or Authorized -> Failed, keeping ``reason`` (1 to 500 characters).

        An authorization a processor holds is voided through it (a ``cancel`` operation,
        queued with the failure). Refused while a capture or void is under way.

        Raises:
            PermissionDenied, PaymentNotFound, InvalidTransition, ValidationError.
            IdempotencyConflict: see ``confirm_payment``.
        """
        with self._telemetry.operation("fail_payment") as span:
            return await self._change(
                span, "fail", payment_id, actor, reason=reason, key=idempotency_key
            )

    async def cancel_payment(
        self,
        payment_id: UUID | str,
        *,
        actor: Actor,
        reason: str | None = None,
        idempotency_key: str | None = None,
    ) -> Payment:
        """Pending -> Cancelled, or Authorized -> Cancelled (a void)."""
        with self._telemetry.operation("cancel_payment") as span:
            return await self._change(
                span, "cancel", payment_id, actor, reason=reason, key=idempotency_key
            )

    async def _change(
        self,
        span: trace.Span,
        action: str,
        payment_id: UUID | str,
        actor: Actor,
        *,
        reason: str | None = None,
        amount: object = None,
        key: str | None = None,
    ) -> Payment:
        self._policy.check(actor, action)
        pid = self._check_id_and_reason(
            payment_id, reason, required=action == "fail", checked=action in {"fail", "cancel"}
        )
        if errors := self._validation.check_operation_key(key):
            raise ValidationError(errors)

        async def repeated() -> Payment | None:
            """The payment as the call that used ``key`` first left it, if there was one."""
            held = None if key is None else await self._store.find_request(actor.id, key)
            return None if held is None else replay(held, pid, action, amount=amount, reason=reason)

        fresh = False
        for _ in range(MAX_ATTEMPTS):
            current = await self._read(pid, fresh=fresh)
            wanted = None if amount is None else self._money(amount, current.currency)
            if current.has_plan and wanted not in (None, current.amount):
                message = "a payment paid in installments is captured whole"
                raise ValidationError([FieldError("amount", message, "plan")])
            now = self._clock()
            try:
                new = transition(current, action, at=now, reason=reason, amount=wanted)
                held = None
                if action in HELD_ACTIONS and current.status is PaymentStatus.AUTHORIZED:
                    held = await self._held(current, action)
            except (InvalidTransition, AmountExceeded):
                if (done := await repeated()) is not None:
                    return done
                if fresh:
                    raise
                fresh = True  # a cached copy may be behind: decide on the store's
                continue
            kind, operation = action, None
            if held is not None:
                kind, new, operation = self._through(
                    held, action, current, new, reason=reason, now=now
                )
            change = record_change(
                new,
                kind,
                from_status=current.status,
                actor_id=actor.id,
                reason=reason,
                correlation_id=current_correlation_id(),
                operation=operation,
            )
            change = await self._planned(change, current, kind, wanted)
            try:
                taken = (wanted or current.amount) if action == "capture" else None
                applied = await self._store.apply(
                    _keyed(change, key, action, reason, taken), expected=current.status
                )
            except IdempotencyConflict:
                if (done := await repeated()) is None:
                    raise
                return done
            if applied:
                await self._cache_set(new)
                Telemetry.describe(span, new)
                if new.status is not current.status:
                    self._telemetry.payment_changed(new)
                return new
            fresh = True  # someone changed it first (perhaps in another process)
        raise StoreError(f"payment {pid} changed {MAX_ATTEMPTS} times while {action} waited")

    def _through(
        self,
        held: Operation,
        action: str,
        current: Payment,
        new: Payment,
        *,
        reason: str | None,
        now: datetime,
    ) -> tuple[str, Payment, Operation]:
        """What ``action`` becomes when a processor holds the payment's authorization:
        a failure fails now and voids the hold; a capture or void is queued."""
        if action == "fail":
            return (
                action,
                new,
                self._follow_up(held, OperationKind.CANCEL, held.amount, reason, now),
            )
        # A plan's capture collects installment 1, which is what was authorized.
        plain_capture = action == "capture" and not current.has_plan
        amount = new.captured_amount if plain_capture else held.amount
        operation = self._follow_up(held, OperationKind(action), amount, reason, now)
        return f"{action}_queued", touched(current, at=now), operation

    async def refund_payment(
        self,
        payment_id: UUID | str,
        amount: Decimal | int | str | None = None,
        *,
        actor: Actor,
        reason: str | None = None,
        idempotency_key: str | None = None,
    ) -> Operation:
        """Give back ``amount`` (what is left to refund when None) of a Confirmed payment.

        The payment stays Confirmed until everything captured is refunded, then is
        Refunded. A repeat with the same ``idempotency_key`` (scoped by payment and actor)
        returns the same Operation.

        Raises:
            PermissionDenied, PaymentNotFound, ValidationError.
            InvalidTransition: the payment is not Confirmed.
            AmountExceeded: more than is left to refund.
            IdempotencyConflict: the key was used for another refund of this payment.
        """
        with self._telemetry.operation("refund_payment") as span:
            self._policy.check(actor, "refund")
            pid = self._check_id_and_reason(payment_id, reason, required=False, checked=True)
            errors = self._validation.check_operation_key(idempotency_key)
            if errors:
                raise ValidationError(errors)
            fresh = False
            for _ in range(MAX_ATTEMPTS):
                current = await self._read(pid, fresh=fresh)
                if idempotency_key is not None:
                    done = await self._store.find_operation(
                        pid, scope=actor.id, key=idempotency_key
                    )
                    if done is not None:
                        return same_refund(done, amount, reason, idempotency_key)
                wanted = (
                    current.refundable if amount is None else self._money(amount, current.currency)
                )
                now = self._clock()
                try:
                    new = refund(current, wanted, at=now)
                    route = await self._refund_route(current, wanted, now)
                except (InvalidTransition, AmountExceeded):
                    if fresh:
                        raise
                    fresh = True
                    continue
                except ValidationError:  # the plan was read after a newer refund committed
                    fresh = True
                    continue
                operation = attrs.evolve(
                    route, reason=reason, idempotency_key=idempotency_key, created_at=now,
                    updated_at=now,
                )  # fmt: skip
                kind = "refund"
                if operation.status is OperationStatus.PENDING:  # held until the money moves
                    kind, new = "refund_queued", reserve_refund(current, wanted, at=now)
                change = record_change(
                    new,
                    kind,
                    from_status=current.status,
                    actor_id=actor.id,
                    reason=reason,
                    correlation_id=current_correlation_id(),
                    operation=operation,
                )
                try:
                    change = await self._planned(change, current, kind, wanted)
                    applied = await self._store.apply(change, expected=current.status)
                except ValidationError:  # the plan was read after a newer refund committed
                    applied = False
                except IdempotencyConflict:
                    applied = False  # the same key won a race: the next round returns it
                if applied:
                    await self._cache_set(new)
                    Telemetry.describe(span, new)
                    if new.status is not current.status:
                        self._telemetry.payment_changed(new)
                    return operation
                fresh = True
            raise StoreError(f"payment {pid} changed {MAX_ATTEMPTS} times while a refund waited")

    async def _refund_route(self, payment: Payment, amount: Decimal, now: datetime) -> Operation:
        """The refund Operation of ``amount``, by where its money goes: completed here
        (``succeeded``: nothing to give back through a processor), queued to the processor
        that holds the money (``pending``, due now), or, on a plan with a collection or
        another refund under way, waiting for it to settle (``pending``, not due).

        Raises:
            InvalidTransition, AmountExceeded: the payment cannot refund ``amount``.
            ValidationError: its plan cannot take the refund (read after a newer one).
        """
        reserve_refund(payment, amount, at=now)  # the payment's own rules first
        done = Operation(
            id=uuid7(),
            payment_id=payment.id,
            kind=OperationKind.REFUND,
            amount=amount,
            currency=payment.currency,
            status=OperationStatus.SUCCEEDED,
            created_at=now,
            updated_at=now,
        )
        if not payment.has_plan:
            held = await self._held(payment, "refund")
            if held is None:  # no processor holds it: the refund completes here
                return done
            return self._follow_up(held, OperationKind.REFUND, amount, None, now)
        plan = await self._store.plan(payment.id)
        operations = await self._store.operations(payment.id) if self._processor else []
        if any(op.status in WAITING for op in operations if op.kind in PLAN_MONEY):
            return attrs.evolve(done, status=OperationStatus.PENDING)  # waits, not due
        if plan is None:
            raise StoreError(f"payment {payment.id} has no plan")
        _, allocation = refund_on_plan(plan, amount, now)  # ValidationError: a newer refund
        collector = collector_of(operations)
        if not allocation.returned or collector is None:
            return done  # it only reduces what is owed, or nothing went through a processor
        sent = self._follow_up(collector, OperationKind.REFUND, amount, None, now)
        return attrs.evolve(sent, processor_amount=allocation.returned)

    async def _held(self, payment: Payment, action: str) -> Operation | None:
        """The processor's charge or authorization that a follow-up of ``payment`` must go
        through, or None (no processor, or the money was moved by hand).

        Raises:
            InvalidTransition: a capture or void is already under way.
        """
        if self._processor is None:
            return None
        operations = await self._store.operations(payment.id)
        held = original_of(operations)
        if held is not None and action != "refund":
            for op in operations:
                if (
                    op.kind in (OperationKind.CAPTURE, OperationKind.CANCEL)
                    and op.status in WAITING
                ):
                    under_way = f"a {op.kind.value} is under way ({op.id})"
                    raise InvalidTransition(payment.id, payment.status, action, under_way)
        return held

    def _follow_up(
        self, held: Operation, kind: OperationKind, amount: Decimal, reason: str | None,
        now: datetime,
    ) -> Operation:  # fmt: skip
        return Operation(
            id=uuid7(),
            payment_id=held.payment_id,
            kind=kind,
            amount=amount,
            currency=held.currency,
            status=OperationStatus.PENDING,
            created_at=now,
            updated_at=now,
            processor=held.processor,
            reason=reason,
            due_at=now,
        )

    async def operations(self, payment_id: UUID | str) -> list[Operation]:
        """The payment's money movements, oldest first.

        Raises:
            PaymentNotFound: no payment has this id.
        """
        with self._telemetry.operation("operations"):
            pid = parse_payment_id(payment_id)
            found = await self._store.operations(pid)
            if not found and await self._store.get(pid) is None:
                raise PaymentNotFound(pid)
            return found

    async def _read(self, pid: UUID, *, fresh: bool) -> Payment:
        """The payment: through the cache, or (``fresh``) from the store."""
        if not fresh:
            return await self._load(pid)
        await self._cache_delete(pid)
        payment = await self._store.get(pid)
        if payment is None:
            raise PaymentNotFound(pid)
        return payment

    def _money(self, value: object, currency: str) -> Decimal:
        amount, errors = self._validation.check_money(value, currency)
        if amount is None:
            raise ValidationError(errors)
        return amount

    def _check_id_and_reason(
        self, payment_id: object, reason: object, *, required: bool, checked: bool = True
    ) -> UUID:
        errors = self._validation.check_reason(reason, required=required) if checked else []
        try:
            pid = parse_payment_id(payment_id)
        except ValidationError as exc:
            raise ValidationError([*exc.errors, *errors]) from None
        if errors:
            raise ValidationError(errors)
        return pid

    async def confirm_payments(
        self, payment_ids: Iterable[UUID | str], *, actor: Actor
    ) -> BulkResult:
        """Confirm every Pending payment among ``payment_ids``; report why others were skipped."""
        with self._telemetry.operation("confirm_payments"):
            self._policy.check(actor, "confirm_payments")
            ids = parse_ids(payment_ids)
            found = await self._store.get_many(ids)
            skipped: dict[UUID, str] = {}
            changes: list[Change] = []
            correlation_id = current_correlation_id()
            now = self._clock()
            for pid in ids:
                payment = found.get(pid)
                if payment is None:
                    skipped[pid] = "not found"
                elif payment.status is not PaymentStatus.PENDING:
                    skipped[pid] = f"is {payment.status.value}"
                else:
                    new = transition(payment, "confirm", at=now)
                    change = record_change(
                        new,
                        "confirm",
                        from_status=payment.status,
                        actor_id=actor.id,
                        correlation_id=correlation_id,
                    )
                    changes.append(await self._planned(change, payment, "confirm", None))
            applied = (
                await self._store.apply_many(changes, expected=PaymentStatus.PENDING)
                if changes
                else set()
            )
            confirmed: list[Payment] = []
            for change in changes:
                payment = change.payment
                if payment.id in applied:
                    confirmed.append(payment)
                    await self._cache_set(payment)
                    self._telemetry.payment_changed(payment)
                else:
                    skipped[payment.id] = "changed concurrently: no longer Pending"
                    await self._cache_delete(payment.id)
            return BulkResult(confirmed, skipped)

    # -- installment plans ------------------------------------------------------

    async def plan(self, payment_id: UUID | str) -> Plan:
        """The payment's installment plan: its status, installments and late fees.

        Raises:
            PaymentNotFound: no payment has this id.
            ValidationError: the payment is not paid in installments.
        """
        with self._telemetry.operation("plan"):
            pid = parse_payment_id(payment_id)
            found = await self._store.plan(pid)
            if found is None:
                await self._read(pid, fresh=True)  # PaymentNotFound if there is no payment
                raise ValidationError(
                    [FieldError("payment_id", "is not paid in installments", "plan")]
                )
            return found

    async def pay_installment(self, payment_id: UUID | str, number: int, *, actor: Actor) -> Plan:
        """Record installment ``number`` paid (by hand: a bank transfer, a card at a
        desk); the plan is completed when nothing is owed. Needs ADMIN.

        Raises:
            PermissionDenied, PaymentNotFound.
            ValidationError: no such installment, or it is not owed.
        """
        with self._telemetry.operation("pay_installment"):
            return await self._settle_installment(payment_id, number, actor, None)

    async def waive_installment(
        self, payment_id: UUID | str, number: int, *, actor: Actor, reason: str
    ) -> Plan:
        """Forgive installment ``number``: the customer no longer owes it (kept, as
        ``cancelled``, to show what was waived), with ``reason`` in the audit trail.
        Needs ADMIN.

        Raises:
            PermissionDenied, PaymentNotFound.
            ValidationError: no such installment, it is not owed, or no reason.
        """
        with self._telemetry.operation("waive_installment"):
            errors = self._validation.check_reason(reason, required=True)
            if errors:
                raise ValidationError(errors)
            return await self._settle_installment(payment_id, number, actor, reason)

    async def _settle_installment(
        self, payment_id: UUID | str, number: int, actor: Actor, waived: str | None
    ) -> Plan:
        self._policy.check(actor, "pay_installment" if waived is None else "waive_installment")
        pid = parse_payment_id(payment_id)
        if isinstance(number, bool) or not isinstance(number, int) or number < 1:
            raise ValidationError([FieldError("number", "must be a whole number from 1", "range")])
        for _ in range(MAX_ATTEMPTS):
            current = await self._read(pid, fresh=True)
            before = await self.plan(pid)
            if number in await self._busy_installments(current, before):
                why = (
                    "a refund of the plan is under way: it changes what is owed"
                    if current.pending_refunds
                    else f"a collection of installment {number} is under way: settle it first"
                )
                raise ValidationError([FieldError("number", why, "busy")])
            now = self._clock()
            after = pay(before, number, now) if waived is None else waive(before, number, now)
            events: PlanEvents = []
            if after.status is PlanStatus.COMPLETED:
                events.append(("plan.completed", {}))
            kind = "installment_paid" if waived is None else "waived"
            if await self._write_plan(current, before, after, kind, actor_id=actor.id,
                                      events=events, details={"installment": number},
                                      reason=waived, at=now):  # fmt: skip
                return after
        raise StoreError(f"payment {pid} changed {MAX_ATTEMPTS} times while settled")

    async def collect_installments(self, limit: int = 100) -> int:
        """Queue a collection (an ``installment`` operation, carried out by the worker
        through the processor) for each installment due now, once per installment; return
        how many were queued. A declined collection is not tried again by itself: the
        installment goes overdue, and a person records it paid (``pay_installment``)."""
        with self._telemetry.operation("collect_installments"):
            if self._processor is None:
                return 0
            await self._release_all_refunds(limit)
            queued = 0
            for pid, number in await self._store.installments_due(self._clock(), limit):
                if await self._queue_installment(pid, number):
                    queued += 1
            return queued

    async def _queue_installment(self, pid: UUID, number: int) -> bool:
        system = Actor.system()
        for _ in range(MAX_ATTEMPTS):
            current = await self._read(pid, fresh=True)
            plan = await self._store.plan(pid)
            due = None if plan is None else plan.installment(number)
            if (
                plan is None
                or due is None
                or not due.unpaid
                or current.status is not PaymentStatus.CONFIRMED
                or current.pending_refunds  # a refund under way may cancel the installment
            ):
                return False
            now = self._clock()
            operation = Operation(
                id=uuid7(),
                payment_id=pid,
                kind=OperationKind.INSTALLMENT,
                amount=plan.collection_amount(number),  # the installment and its late fees
                currency=current.currency,
                status=OperationStatus.PENDING,
                created_at=now,
                updated_at=now,
                reason=f"installment {number} of {len(plan.installments)}",
                idempotency_key=installment_key(number),
                due_at=now,
                installment=number,
            )
            try:
                if await self._write_plan(current, plan, plan, "collecting", actor_id=system.id,
                                          details={"installment": number}, operation=operation,
                                          at=now):  # fmt: skip
                    return True
            except IdempotencyConflict:
                return False  # already collected (or being collected) once
        raise StoreError(f"payment {pid} changed {MAX_ATTEMPTS} times while collected")

    async def _release_all_refunds(self, limit: int) -> None:
        """Release refunds still waiting though nothing holds them back any more (their
        collection settled, and the process stopped before it released them)."""
        pending = await self._store.operations_with_status(OperationStatus.PENDING, limit=limit)
        for pid in dict.fromkeys(op.payment_id for op in pending if _waits(op)):
            await self._release_refunds(pid)

    async def _release_refunds(self, pid: UUID) -> None:
        """Allocate the oldest refund of the plan that waited for its collections, once
        none is under way: completed here when nothing goes back through a processor,
        else sent to the processor that collected last for what goes back. The next one
        follows when this one settles."""
        for _ in range(MAX_ATTEMPTS):
            operations = await self._store.operations(pid)
            waiting = [op for op in operations if _waits(op)]
            busy = any(
                op.kind in PLAN_MONEY and op.status in WAITING and not _waits(op)
                for op in operations
            )
            if not waiting or busy:
                return
            first, now = waiting[0], self._clock()
            plan = await self._store.plan(pid)
            if plan is None:
                raise StoreError(f"payment {pid} has refunds waiting for a plan it lacks")
            try:
                _, allocation = refund_on_plan(plan, first.amount, now)
            except ValidationError as exc:
                stuck = _needs_attention(first, "; ".join(e.message for e in exc.errors))
                if await self._store.settle(first, stuck):
                    return
                continue
            collector = collector_of(operations)
            if not allocation.returned or collector is None:
                done = attrs.evolve(first, status=OperationStatus.SUCCEEDED, updated_at=now)
                if await self.settle_operation(first, Step(done, "refund"), actor=Actor.system()):
                    return  # settling it released the next one
                continue
            sent = attrs.evolve(
                first, processor=collector.processor, processor_amount=allocation.returned,
                due_at=now, updated_at=now,
            )  # fmt: skip
            if await self._store.settle(first, sent):
                return
        raise StoreError(f"payment {pid} changed {MAX_ATTEMPTS} times while refunds waited")

    async def process_overdue(self) -> int:
        """Mark installments unpaid past their due date (and grace) overdue and charge the
        late-fee policy's fees, on the service's clock; return how many plans changed.
        The worker calls it; it needs no actor (its entries name the system)."""
        with self._telemetry.operation("process_overdue"):
            now = self._clock()
            # A coarse filter (a currency without a policy has no grace); the plan decides.
            repeats = [p.grace + p.repeat_after for p in self._late_fees.values()]
            repeat_before = now - min(repeats) if repeats else EPOCH
            changed = 0
            for pid in await self._store.plans_due(now, repeat_before):
                if await self._mark_overdue(pid, now):
                    changed += 1
            return changed

    async def _mark_overdue(self, pid: UUID, now: datetime) -> bool:
        for _ in range(MAX_ATTEMPTS):
            current = await self._read(pid, fresh=True)
            before = await self._store.plan(pid)
            if before is None:
                return False
            busy = await self._busy_installments(current, before, to_be_late=True)
            policy = self._late_fees.get(before.currency)
            after, late, fees = mark_overdue(before, policy, now, busy)
            if not late and not fees:
                return False
            events: PlanEvents = [("plan.installment_overdue", {"installment": n}) for n in late]
            for fee in fees:
                charged = {"installment": fee.installment, "amount": str(fee.amount)}
                events.append(("plan.late_fee_charged", {"late_fee": charged}))
            kind = "installment_late" if late else "late_fee_charged"
            if await self._write_plan(current, before, after, kind, actor_id=Actor.system().id,
                                      events=events[1:], details=events[0][1], at=now):  # fmt: skip
                return True
        raise StoreError(f"payment {pid} changed {MAX_ATTEMPTS} times while overdue")

    async def _busy_installments(
        self, payment: Payment, plan: Plan, *, to_be_late: bool = False
    ) -> frozenset[int]:
        """Installments money is moving for: a collection of them is under way, or the
        library holds them back (no collection is sent while a refund waits).
        ``to_be_late`` adds those the processor was not asked for yet: an installment is
        late only once its collection was tried (or when no processor collects them)."""
        if payment.pending_refunds:
            return frozenset(i.number for i in plan.installments)
        operations = await self._store.operations(payment.id)
        busy = {
            number
            for op in operations
            if op.status in WAITING and (number := installment_of(op)) is not None
        }
        if to_be_late and self._processor is not None:
            tried = {installment_of(op) for op in operations}
            busy |= {i.number for i in plan.installments if i.number not in tried}
        return frozenset(busy)

    async def _write_plan(
        self,
        current: Payment,
        before: Plan,
        after: Plan,
        kind: str,
        *,
        actor_id: str,
        at: datetime,
        events: Sequence[tuple[str, Mapping[str, object]]] = (),
        details: Mapping[str, object] | None = None,
        reason: str | None = None,
        operation: Operation | None = None,
    ) -> bool:
        """Write a change of the payment's plan (the payment one version on, its status
        unchanged) with its entry, events, exposure and ``operation``; False when the
        payment moved meanwhile."""
        change = record_change(
            touched(current, at=at),
            kind,
            from_status=current.status,
            actor_id=actor_id,
            reason=reason,
            correlation_id=current_correlation_id(),
            operation=operation,
        )
        change = with_plan(change, after, events, details=details)
        change = self._with_credit(change, current, before)
        if not await self._store.apply(change, expected=current.status):
            return False
        await self._cache_set(change.payment)
        return True

    # -- credit -----------------------------------------------------------------

    async def _planned(
        self,
        change: Change,
        before: Payment,
        action: str,
        amount: Decimal | None,
        installment: int | None = None,
    ) -> Change:
        """``change`` with what ``action`` does to the payment's plan, if it has one, and
        to its customer's exposure."""
        plan = await self._store.plan(before.id) if before.has_plan else None
        if plan is not None:
            after, events = after_payment(plan, action, at=change.payment.updated_at,
                                          amount=amount, installment=installment)  # fmt: skip
            if after is not plan:
                details = None if installment is None else {"installment": installment}
                change = with_plan(change, after, events, details=details)
        return self._with_credit(change, before, plan)

    def _with_credit(
        self, change: Change, before: Payment | None, plan: Plan | None = None
    ) -> Change:
        """``change`` with what it does to its customer's exposure, which is counted in
        every currency (so that a credit policy turned on later starts from the truth),
        and the limit a growing one must stay under, where the policy applies."""
        credit, payment = self._credit, change.payment
        moved = exposure_of(payment, change.plan or plan) - exposure_of(before, plan)
        if not moved:
            return change
        limit = None
        if moved > 0 and credit is not None and credit.applies_to(payment):
            limit = credit.limit_of(payment.customer_id)
        return attrs.evolve(change, exposure=moved, credit_limit=limit)

    async def credit_exposure(self, customer_id: str) -> Decimal:
        """What ``customer_id`` owes now in the credit policy's currency: Pending and
        Authorized payments, and unpaid installments (0 without a credit policy)."""
        with self._telemetry.operation("credit_exposure"):
            if self._credit is None:
                return Decimal(0)
            return await self._store.exposure(customer_id, self._credit.currency)

    async def rebuild_exposure(self) -> int:
        """Recount every customer's exposure from payments and plans, and return how many
        (customer, currency) figures were wrong and are now right. Maintenance, like
        ``purge_idempotency_keys``: it needs no actor. Exposure is kept right by every
        change; this repairs a database changed behind the library's back."""
        with self._telemetry.operation("rebuild_exposure"):
            return await self._store.rebuild_exposure()

    # -- processors -------------------------------------------------------------

    def _check_capture_method(self, capture_method: object) -> None:
        if capture_method is None:
            return
        if capture_method not in ("automatic", "manual"):
            message = "must be 'automatic', 'manual' or None"
        elif self._processor is None:
            message = "needs a processor: open the service with processor=..."
        else:
            return
        raise ValidationError([FieldError("capture_method", message, "choice")])

    async def settle_operation(self, previous: Operation, step: Step, *, actor: Actor) -> bool:
        """Record ``step`` (a processor's answer, decided) with the payment's change.

        Both or neither. When the payment changed meanwhile (another operation of it
        settled first), the change is decided again on the payment as it is now;
        ``False`` when someone settled this operation meanwhile. A payment already where
        the answer leads (confirmed by hand while its charge was unknown) stays as it is;
        one that can no longer take the change (cancelled by hand while its charge was
        in flight) leaves the operation ``needs_attention``.
        """
        for _ in range(MAX_ATTEMPTS):
            operation, change = await self._settlement(step, actor)
            if await self._store.settle(previous, operation, change):
                if change is not None:
                    await self._cache_set(change.payment)
                    if change.payment.status is not change.audit.from_status:
                        self._telemetry.payment_changed(change.payment)
                if operation.kind in PLAN_MONEY and operation.status not in WAITING:
                    await self._release_refunds(operation.payment_id)
                return True
            stored = await self._store.get_operation(previous.id)
            if stored is None or (stored.status, stored.attempts, stored.lookups) != (
                previous.status,
                previous.attempts,
                previous.lookups,
            ):
                return False  # settled by someone else
        raise StoreError(f"payment {previous.payment_id} changed {MAX_ATTEMPTS} times")

    async def _settlement(self, step: Step, actor: Actor) -> tuple[Operation, Change | None]:
        """The operation as ``step`` leaves it, and the payment's change, on the payment
        as the store has it now."""
        operation = step.operation
        if step.payment_action is None:
            return operation, None
        current = await self._read(operation.payment_id, fresh=True)
        if operation.kind is OperationKind.CANCEL and current.status is PaymentStatus.FAILED:
            return operation, None  # the void of a failed payment's hold: it stays Failed
        if step.payment_action in ("confirm", "refund") and current.has_plan:
            plan = await self._store.plan(current.id)
            at = operation.updated_at
            wrong = None if plan is None else _not_as_asked(plan, operation, at=at)
            if wrong is not None:
                return _needs_attention(operation, wrong), None
        try:
            new = settle_payment(
                current, operation, step.payment_action, at=operation.updated_at,
                reason=step.reason,
            )  # fmt: skip
        except (InvalidTransition, AmountExceeded) as exc:
            if already_there(current, step.payment_action):
                return operation, None  # moved by hand to where this answer leads
            return _needs_attention(operation, str(exc)), None
        change = record_change(
            new,
            step.payment_action,
            from_status=current.status,
            actor_id=actor.id,
            reason=step.reason,
            correlation_id=current_correlation_id(),
            operation=operation,
        )
        # The operation rides in the event; the store updates it rather than adding it.
        change = attrs.evolve(change, operation=None)
        try:
            planned = await self._planned(
                change, current, step.payment_action, operation.amount, installment_of(operation)
            )
        except ValidationError as exc:  # collected, yet paid by hand or cancelled meanwhile
            return _needs_attention(operation, "; ".join(e.message for e in exc.errors)), None
        return operation, planned

    async def operations_needing_attention(self, limit: int = 100) -> list[Operation]:
        """Operations whose outcome no lookup could settle: a person decides them."""
        with self._telemetry.operation("operations_needing_attention"):
            return await self._store.operations_with_status(
                OperationStatus.NEEDS_ATTENTION, limit=limit
            )

    async def resolve_operation(
        self,
        operation_id: UUID | str,
        outcome: Outcome | str,
        *,
        actor: Actor,
        reason: str,
    ) -> Operation:
        """Settle an operation whose outcome is unknown, as a person found it out.

        ``outcome`` is ``succeeded`` or ``declined``; the payment moves as the processor's
        answer would have moved it, and the audit entry names ``actor`` and ``reason``.

        Raises:
            PermissionDenied.
            ValidationError: a bad argument, a missing operation, or one that is not
                unknown or needing attention.
        """
        with self._telemetry.operation("resolve_operation"):
            self._policy.check(actor, "resolve")
            errors = self._validation.check_reason(reason, required=True)
            try:
                op_id = parse_payment_id(operation_id, "operation_id")
            except ValidationError as exc:
                errors = [*exc.errors, *errors]
            answer = str(outcome)
            if answer not in (Outcome.SUCCEEDED.value, Outcome.DECLINED.value):
                errors.append(FieldError("outcome", "must be succeeded or declined", "choice"))
            if errors:
                raise ValidationError(errors)
            for _ in range(MAX_ATTEMPTS):
                previous = await self._store.get_operation(op_id)
                if previous is None:
                    raise ValidationError(
                        [FieldError("operation_id", "no such operation", "missing")]
                    )
                if previous.status not in (
                    OperationStatus.UNKNOWN,
                    OperationStatus.NEEDS_ATTENTION,
                ):
                    raise ValidationError(
                        [FieldError("operation_id", f"is {previous.status.value}: only unknown"
                                    " operations, or those needing attention, are resolved",
                                    "state")]
                    )  # fmt: skip
                step = resolved(
                    previous, Outcome(answer), at=self._clock(), reason=reason, by=actor.id
                )
                if await self.settle_operation(previous, step, actor=actor):
                    settled = await self._store.get_operation(op_id)
                    return settled or step.operation
            raise StoreError(f"operation {op_id} changed {MAX_ATTEMPTS} times while resolved")

    async def record_processor_event(
        self,
        processor: str,
        event_id: str,
        *,
        result: ProcessorResult,
        operation_id: UUID | str | None = None,
        reference: str | None = None,
    ) -> bool:
        """Apply a processor's callback (a webhook) once; say whether its id was new.

        ``(processor, event_id)`` is kept in an inbox, so a repeated delivery is a no-op
        (``False``). The operation is found by ``operation_id`` or by the processor's
        ``reference``. A final answer settles an operation still waiting (racing the
        worker, it applies once); an answer equal to the recorded one changes nothing;
        a conflicting late answer marks the operation ``needs_attention``. Once an
        operation needs attention only ``resolve_operation`` settles it: later callbacks
        are recorded and change nothing.

        Raises:
            ValidationError: a bad argument.
            PermissionDenied: the operation was sent to another processor, or never sent
                (the worker has recorded no attempt of it yet): nothing is recorded, and
                the processor's next delivery, or the worker's lookup, settles it.
        """
        with self._telemetry.operation("record_processor_event"):
            op_id = _check_callback(processor, event_id, result, operation_id, reference)
            if op_id is not None:
                operation = await self._store.get_operation(op_id)
            else:
                operation = await self._store.find_operation_by_reference(processor, str(reference))
            if operation is not None and not _sent_to(operation, processor):
                raise PermissionDenied(
                    f"processor:{processor}",
                    f"settle operation {operation.id}",
                    "the processor it was sent to",
                )
            fresh = await self._store.record_callback(
                processor,
                event_id,
                operation_id=None if operation is None else operation.id,
                outcome=result.outcome.value,
                received_at=self._clock(),
            )
            if not fresh:
                return False
            if operation is None:
                logger.warning("callback %s from %s names no known operation", event_id, processor)
                return True
            if result.outcome in (Outcome.SUCCEEDED, Outcome.DECLINED):
                await self._apply_callback(operation, processor, result)
            return True

    async def _apply_callback(
        self, operation: Operation, processor: str, result: ProcessorResult
    ) -> None:
        answered = (
            OperationStatus.SUCCEEDED
            if result.outcome is Outcome.SUCCEEDED
            else OperationStatus.DECLINED
        )
        current: Operation | None = operation
        for _ in range(MAX_ATTEMPTS):
            if current is None or current.status in (answered, OperationStatus.NEEDS_ATTENTION):
                return  # said already, or a person settles it (resolve_operation)
            now = self._clock()
            if current.status in (OperationStatus.PENDING, OperationStatus.UNKNOWN):
                step = from_callback(current, result, processor=processor, at=now)
                actor = Actor.system(f"processor:{processor}")
                if await self.settle_operation(current, step, actor=actor):
                    return
            else:
                flagged = attrs.evolve(
                    current,
                    status=OperationStatus.NEEDS_ATTENTION,
                    due_at=None,
                    updated_at=now,
                    error=f"{processor} says {result.outcome.value} after {current.status.value}",
                )
                if await self._store.settle(current, flagged):
                    return
            current = await self._store.get_operation(operation.id)  # it moved: read again
        raise StoreError(f"operation {operation.id} changed {MAX_ATTEMPTS} times")

    # -- maintenance ------------------------------------------------------------

    async def purge_idempotency_keys(self, older_than: timedelta = KEY_RETENTION) -> int:
        """Release idempotency keys of payments created more than ``older_than`` ago.

        Keys are kept at least 24 hours; a purged payment's ``idempotency_key`` reads None.
        """
        with self._telemetry.operation("purge_idempotency_keys"):
            if not isinstance(older_than, timedelta) or older_than < KEY_RETENTION:
                raise ValidationError(
                    [FieldError("older_than", "must be a timedelta of at least 24 hours", "range")]
                )
            return await self._store.purge_idempotency_keys(self._clock() - older_than)

    async def health(self) -> HealthReport:
        """Store round trip, outbox lag and operations needing a person: ``ok``,
        ``degraded`` or ``down``."""
        with self._telemetry.operation("health"):
            start = time.perf_counter()
            try:
                await self._store.ping()
                latency_ms = (time.perf_counter() - start) * 1000
                stats = await self._store.outbox_stats()
                attention = await self._store.operations_with_status(
                    OperationStatus.NEEDS_ATTENTION, limit=1000
                )
            except PaymentError as exc:  # the driver's text stays in the log, not the report
                logger.warning("health check: the store did not answer", exc_info=True)
                return HealthReport(
                    "down", {"store": {"status": "down", "error": exc.code}, "outbox": {}}
                )
            age = (
                0.0
                if stats.oldest_pending_at is None
                else max(0.0, (self._clock() - stats.oldest_pending_at).total_seconds())
            )
            lagging = age > self._lag_threshold.total_seconds() or stats.parked > 0
            status: HealthStatus = "degraded" if lagging or attention else "ok"
            return HealthReport(
                status,
                {
                    "store": {
                        "status": "ok",
                        "backend": self._store.backend,
                        "latency_ms": round(latency_ms, 3),
                    },
                    "outbox": {
                        "status": "degraded" if lagging else "ok",
                        "pending": stats.pending,
                        "parked": stats.parked,
                        "oldest_pending_age_s": round(age, 3),
                    },
                    "operations": {
                        "status": "degraded" if attention else "ok",
                        "needing_attention": len(attention),
                    },
                },
            )

    async def aclose(self) -> None:
        """Close the store (connections, threads)."""
        await self._store.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- cache ------------------------------------------------------------------

    async def _load(self, pid: UUID) -> Payment:
        cached = await self._cache_get(pid)
        if cached is not None:
            return cached
        payment = await self._store.get(pid)
        if payment is None:
            raise PaymentNotFound(pid)
        await self._cache_set(payment)
        return payment

    async def _cache_get(self, pid: UUID) -> Payment | None:
        if self._cache is None:
            return None
        try:
            return await self._cache.get(pid)
        except Exception:
            logger.warning("cache get failed; reading the store", exc_info=True)
            return None

    async def _cache_set(self, payment: Payment) -> None:
        if self._cache is not None:
            try:
                await self._cache.set(payment)
            except Exception:
                logger.warning("cache set failed; evicting", exc_info=True)
                await self._cache_delete(payment.id)

    async def _cache_delete(self, pid: UUID) -> None:
        if self._cache is not None:
            try:
                await self._cache.delete(pid)
            except Exception:
                logger.warning("cache delete failed", exc_info=True)


def _check_callback(
    processor: object, event_id: object, result: object, operation_id: object, reference: object
) -> UUID | None:
    """A callback's arguments checked; the operation id, if it names one.

    Raises:
        ValidationError: every problem found.
    """
    errors: list[FieldError] = []
    for name, value, longest in (("processor", processor, 100), ("event_id", event_id, 200)):
        if not isinstance(value, str) or not 1 <= len(value) <= longest:
            errors.append(FieldError(name, f"must be 1 to {longest} characters", "length"))
    if not isinstance(result, ProcessorResult):
        errors.append(FieldError("result", "must be a ProcessorResult", "type"))
    op_id = None
    if operation_id is not None:
        try:
            op_id = parse_payment_id(operation_id, "operation_id")
        except ValidationError as exc:
            errors.extend(exc.errors)
    elif not isinstance(reference, str) or not reference:
        errors.append(FieldError("reference", "give operation_id or reference", "required"))
    if errors:
        raise ValidationError(errors)
    return op_id


def _sent_to(operation: Operation, processor: str) -> bool:
    """Whether ``operation`` went to ``processor``: a callback under any other name, or
    for an operation never sent, speaks for money it does not hold."""
    never_sent = operation.status is OperationStatus.PENDING and operation.attempts == 0
    return operation.processor == processor and not never_sent


def _waits(operation: Operation) -> bool:
    """Whether ``operation`` is a refund on a plan waiting for a collection to settle."""
    return (
        operation.kind is OperationKind.REFUND
        and operation.status is OperationStatus.PENDING
        and operation.due_at is None
    )


def _not_as_asked(plan: Plan, operation: Operation, *, at: datetime) -> str | None:
    """Why a collection or refund the processor carried out no longer fits ``plan``, or
    None: installment 1 is paid only for exactly what it asks, and a refund gives back
    through the processor exactly what its allocation returns."""
    if operation.kind is OperationKind.INSTALLMENT:
        due = plan.collection_amount(1)
        if operation.amount != due:
            return f"{operation.amount} was collected, but installment 1 asks for {due}"
        return None
    if operation.kind is OperationKind.REFUND and operation.processor_amount is not None:
        try:
            _, allocation = refund_on_plan(plan, operation.amount, at)
        except ValidationError as exc:
            return "; ".join(e.message for e in exc.errors)
        if allocation.returned != operation.processor_amount:
            return (
                f"{operation.processor_amount} went back, but the plan now returns"
                f" {allocation.returned} for this refund"
            )
    return None


def _keyed(
    change: Change, key: str | None, action: str, reason: str | None, taken: Decimal | None
) -> Change:
    """``change`` claiming ``key``, which keeps the payment as it leaves it for a repeat;
    ``taken`` is what a capture takes (the authorized amount when none was asked)."""
    if key is None:
        return change
    return attrs.evolve(change, request=request_key(key, action, amount=taken, reason=reason))


def _needs_attention(operation: Operation, why: str) -> Operation:
    """``operation`` settled at the processor but the payment cannot take it: a person."""
    return attrs.evolve(
        operation,
        status=OperationStatus.NEEDS_ATTENTION,
        due_at=None,
        error=f"{operation.status.value}, but {why}"[:1000],
    )
