"""The API's request and response bodies as Pydantic models: they validate requests in
both apps and make the FastAPI app's OpenAPI document.

Field names are camelCase on the wire. Request fields run paymentorch's own rules, one
field at a time, so that one 422 lists every problem of a body: its shape and its rules.
Amounts arrive as exact ``Decimal`` values (the apps parse JSON numbers as decimals) or
decimal strings, and leave as decimal strings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

import paymentorch as po
from paymentorch.domain.results import PaymentSummary

RULES = po.ValidationPolicy()


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _camel_keys(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` (a library ``to_dict()``) with the API's field names."""
    return {_camel(k): v for k, v in data.items()}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=_camel, populate_by_name=False)


def _checked(field: str, value: Any, currency: str = "USD") -> Any:
    normalised, errors = RULES.check_field(field, value, currency=currency)
    if errors:
        raise PydanticCustomError(errors[0].code, "; ".join(e.message for e in errors))
    return normalised


class PlanRequest(_Body):
    """Pay in installments: the first at purchase, the others every `intervalDays`."""

    installments: int = Field(default=4, ge=2, le=60)
    interval_days: int = Field(default=14, ge=1, le=366)
    remainder: Literal["first", "last"] = Field(
        default="first", description="Which installments take the cents an even split leaves."
    )
    refund_allocation: Literal["last_first", "even"] = Field(
        default="last_first",
        description="`last_first`: refunds reduce the last installments first (Afterpay);"
        " `even`: spread over the unpaid ones (Klarna).",
    )

    def terms(self) -> po.PlanTerms:
        """The library's terms."""
        return po.PlanTerms(
            installments=self.installments,
            interval=timedelta(days=self.interval_days),
            remainder=self.remainder,
            refund_allocation=self.refund_allocation,
        )


class CreatePaymentRequest(_Body):
    """A new payment. Send the `Idempotency-Key` header to make retries safe."""

    customer_id: str = Field(examples=["ABCD-12345"], description="Who pays.")
    currency: str | None = Field(
        default=None, examples=["USD"], description="ISO 4217 code; USD when left out."
    )
    amount: Decimal = Field(
        examples=["125.50"],
        description="A JSON number or a decimal string, never rounded: no more decimals "
        "than the currency has.",
    )
    metadata: dict[str, str] | None = Field(
        default=None, examples=[{"orderId": "981"}], description="Up to 20 string pairs."
    )
    capture_method: Literal["automatic", "manual"] | None = Field(
        default=None,
        description="With a processor: `automatic` charges at once (the payment is "
        "confirmed or failed by the processor's answer), `manual` authorizes, to be "
        "captured later. Left out, the payment waits for a person.",
    )
    plan: PlanRequest | None = Field(default=None, description="Pay in installments.")

    @field_validator("customer_id")
    @classmethod
    def _customer_id(cls, value: str) -> str:
        result: str = _checked("customer_id", value)
        return result

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        return None if value is None else str(_checked("currency", value))

    @field_validator("amount", mode="before")
    @classmethod
    def _amount(cls, value: Any, info: ValidationInfo) -> Decimal:
        currency = info.data.get("currency") or "USD"
        result: Decimal = _checked("amount", value, currency)
        return result

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return None if value is None else dict(_checked("metadata", value))


def _exact(value: Any) -> Any:
    # JSON numbers arrive as exact Decimals; a float here was never JSON, a bool never money.
    if isinstance(value, bool | float):
        raise PydanticCustomError("type", "must be a decimal number or string")
    return value


Money = Annotated[Decimal | None, BeforeValidator(_exact)]


class CaptureRequest(_Body):
    """How much of the authorization to take; all of it when left out."""

    amount: Money = Field(default=None, examples=["80.00"])


class RefundRequest(_Body):
    """A refund: what is left to refund when `amount` is left out."""

    amount: Money = Field(default=None, examples=["25.00"])
    reason: str | None = Field(default=None, min_length=1, max_length=500)


class ReasonRequest(_Body):
    """Why: the payment fails or is cancelled, an installment is waived, a plan charged off."""

    reason: str = Field(min_length=1, max_length=500, examples=["processor declined"])


class OptionalReasonRequest(_Body):
    """Why the payment is cancelled, if you say."""

    reason: str | None = Field(default=None, min_length=1, max_length=500)


class ResolveRequest(_Body):
    """A person's verdict on an operation no lookup could settle."""

    outcome: Literal["succeeded", "declined"]
    reason: str = Field(min_length=1, max_length=500, examples=["the bank statement shows it"])


class ProcessorEventRequest(_Body):
    """A processor's callback (webhook): what became of one of its operations."""

    event_id: str = Field(min_length=1, max_length=200, description="Unique per processor.")
    outcome: Literal["succeeded", "declined", "pending"]
    operation_id: UUID | None = Field(default=None, description="Ours, or give `reference`.")
    reference: str | None = Field(default=None, min_length=1, max_length=200)
    code: str | None = Field(default=None, max_length=100)
    message: str | None = Field(default=None, max_length=500)

    def result(self) -> po.ProcessorResult:
        """The callback as a ``ProcessorResult``."""
        return po.ProcessorResult(po.Outcome(self.outcome), self.reference, self.code, self.message)


class ProcessorEventResponse(_Body):
    """Whether the callback was new (a repeat changes nothing)."""

    new: bool


class ProcessorResponse(_Body):
    """The processors money moves through, and their circuit breakers."""

    name: str
    processors: dict[str, str] = Field(description="Each processor's breaker: closed, open...")


class InfrastructureResponse(_Body):
    """What the service runs on: its cache, where events go, the encryption key in use."""

    cache: str = Field(description="none, local, redis or redis (local tier)")
    events: Literal["log", "nats", "rabbitmq"] = Field(description="Where the relay publishes.")
    encryption: str | None = Field(description="The active key id; null when not encrypted.")


Status = Literal["Pending", "Authorized", "Confirmed", "Failed", "Cancelled", "Refunded"]
Action = Literal[
    "authorize",
    "confirm",
    "capture",
    "fail",
    "cancel",
    "refund",
    "pay_installment",
    "waive_installment",
    "charge_off",
    "resume_collection",
]


class PaymentResponse(_Body):
    """A payment."""

    id: UUID
    customer_id: str
    amount: str = Field(description="Exact decimal string.", examples=["125.50"])
    currency: str
    status: Status
    created_at: datetime
    updated_at: datetime
    version: int
    failure_reason: str | None
    idempotency_key: str | None
    metadata: dict[str, str]
    captured_amount: str = Field(description="What was taken: 0 until Confirmed.")
    refunded_amount: str = Field(description="The sum of succeeded refunds.")
    has_plan: bool = Field(description="Paid in installments: see its `/plan`.")
    allowed_actions: list[Action] = Field(
        description="What the caller may do next (`po.allowed_actions`, for its role): "
        "`confirm` is `POST .../confirm`, `refund` is `POST .../refunds`, "
        "`pay_installment` and `waive_installment` act on the plan's unpaid installments,"
        " `charge_off` is `POST .../plan/charge-off`."
    )

    @classmethod
    def of(cls, payment: po.Payment, actions: Sequence[str] = ()) -> PaymentResponse:
        """The response body for ``payment``, offering ``actions``."""
        return cls.model_validate(
            {
                "id": payment.id,
                "customerId": payment.customer_id,
                "amount": str(payment.amount),
                "currency": payment.currency,
                "status": payment.status.value,
                "createdAt": payment.created_at,
                "updatedAt": payment.updated_at,
                "version": payment.version,
                "failureReason": payment.failure_reason,
                "idempotencyKey": payment.idempotency_key,
                "metadata": dict(payment.metadata),
                "capturedAmount": po.domain.payment.money_text(
                    payment.captured_amount, payment.currency
                ),
                "refundedAmount": po.domain.payment.money_text(
                    payment.refunded_amount, payment.currency
                ),
                "hasPlan": payment.has_plan,
                "allowedActions": list(actions),
            }
        )


class OperationResponse(_Body):
    """One movement of money."""

    id: UUID
    payment_id: UUID
    kind: Literal["charge", "authorize", "capture", "cancel", "refund", "installment"]
    amount: str = Field(examples=["25.00"])
    currency: str
    status: Literal["pending", "succeeded", "declined", "unknown", "needs_attention"]
    processor: str | None
    reference: str | None
    attempts: int
    reason: str | None
    idempotency_key: str | None
    error: str | None
    created_at: datetime
    updated_at: datetime
    due_at: datetime | None = Field(description="When a worker acts on it next.")
    lookups: int = Field(description="How often the processor was asked what became of it.")
    installment: int | None = Field(description="The installment a collection is for.")
    processor_amount: str | None = Field(
        description="What the processor is asked to move when less than the amount: a"
        " refund on a plan sends only what goes back to the customer."
    )

    @classmethod
    def of(cls, operation: po.Operation) -> OperationResponse:
        """The response body for ``operation``."""
        data = operation.to_dict()
        return cls.model_validate(_camel_keys(data))


class InstallmentResponse(_Body):
    """One installment."""

    number: int
    amount: str
    due_at: datetime
    status: Literal["scheduled", "paid", "overdue", "cancelled"]
    paid_at: datetime | None
    refunded_amount: str
    attempts: int = Field(description="Collections of it sent so far.")
    next_attempt_at: datetime | None = Field(
        description="When it is collected again after a soft decline; null otherwise."
    )
    last_decline: str | None = Field(description="The last decline code its collection got.")


class LateFeeResponse(_Body):
    """A late fee charged."""

    installment: int
    amount: str
    charged_at: datetime
    paid_at: datetime | None = Field(description="Paid with its installment.")
    waived_at: datetime | None = Field(description="Waived with its installment.")


PlanState = Literal["pending", "active", "delinquent", "completed", "cancelled", "charged_off"]


class PlanResponse(_Body):
    """A payment's installment plan."""

    payment_id: UUID
    status: PlanState = Field(
        description="`charged_off`: collection given up and what was owed written off;"
        " the customer still owes it, and a payment later is a recovery."
    )
    order_amount: str
    currency: str
    owed: str = Field(description="What the customer still owes, late fees aside.")
    fees_owed: str = Field(description="The late fees still owed.")
    collection_stopped: bool = Field(
        description="Automatic collection stopped (a hard decline, or the retries ran out):"
        " a person pays, waives, charges off or resumes collection."
    )
    installments: list[InstallmentResponse]
    late_fees: list[LateFeeResponse]

    @classmethod
    def of(cls, plan: po.Plan) -> PlanResponse:
        """The response body for ``plan``."""
        data = plan.to_dict()
        return cls.model_validate(
            {
                "paymentId": data["payment_id"],
                "status": data["status"],
                "orderAmount": data["order_amount"],
                "currency": data["currency"],
                "owed": data["owed"],
                "feesOwed": data["fees_owed"],
                "collectionStopped": data["collection_stopped"],
                "installments": [_camel_keys(i) for i in data["installments"]],
                "lateFees": [_camel_keys(f) for f in data["late_fees"]],
            }
        )


AgingBucketName = Literal["current", "1-29", "30-59", "60-89", "90+"]


class AgingBucketResponse(_Body):
    """The running plans of one aging bucket."""

    count: int = Field(description="How many plans.")
    outstanding: dict[str, str] = Field(
        description="Their unpaid installments per currency, as exact decimal strings.",
        examples=[{"USD": "75.00"}],
    )


class AgingResponse(_Body):
    """Running plans by days past due: `current`, `1-29`, `30-59`, `60-89` and `90+`."""

    as_of: datetime = Field(description="The time the plans were measured at.")
    buckets: dict[AgingBucketName, AgingBucketResponse]
    fees: dict[str, str] = Field(
        description="The running plans' unpaid late fees per currency, apart from the buckets."
    )

    @classmethod
    def of(cls, report: po.AgingReport) -> AgingResponse:
        """The response body for ``report``."""
        return cls.model_validate(_camel_keys(report.to_dict()))


class DelinquentPlanResponse(PlanResponse):
    """A plan at least a day past due, with how its collection stands."""

    customer_id: str
    days_past_due: int = Field(
        description="Whole days since its oldest unpaid installment fell due (the service's clock)."
    )
    installment: int = Field(description="Its oldest unpaid installment.")
    due_at: datetime = Field(description="When that installment fell due.")
    attempts: int = Field(description="Collections of that installment sent so far.")
    last_decline: str | None = Field(description="The last decline code it got, if any.")
    next_attempt_at: datetime | None = Field(
        description="When it is collected again; null before the first attempt or once"
        " collection stopped."
    )

    @classmethod
    def of_delinquent(
        cls, plan: po.Plan, payment: po.Payment, now: datetime
    ) -> DelinquentPlanResponse:
        """The response body for the delinquent ``plan`` of ``payment`` at ``now``."""
        oldest = min((i for i in plan.installments if i.unpaid), key=lambda i: i.number)
        return cls.model_validate(
            {
                **PlanResponse.of(plan).model_dump(by_alias=True),
                "customerId": payment.customer_id,
                "daysPastDue": plan.days_past_due(now),
                "installment": oldest.number,
                "dueAt": oldest.due_at,
                "attempts": oldest.attempts,
                "lastDecline": oldest.last_decline,
                "nextAttemptAt": oldest.next_attempt_at,
            }
        )


class DelinquentPageResponse(_Body):
    """One page of delinquent plans, most days past due first (ties by payment id)."""

    items: list[DelinquentPlanResponse]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")

    @classmethod
    def of(
        cls, page: po.PlanPage, payments: Sequence[po.Payment], now: datetime
    ) -> DelinquentPageResponse:
        """The response body for ``page``, whose plans belong to ``payments`` (in order),
        measured at ``now``."""
        items = [
            DelinquentPlanResponse.of_delinquent(plan, payment, now)
            for plan, payment in zip(page.items, payments, strict=True)
        ]
        return cls.model_validate({"items": items, "nextCursor": page.next_cursor})


class PageResponse(_Body):
    """One page of payments, newest first."""

    items: list[PaymentResponse]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")

    @classmethod
    def of(cls, page: po.Page, items: Sequence[PaymentResponse]) -> PageResponse:
        """The response body for ``page``, its payments shown as ``items``."""
        return cls.model_validate({"items": list(items), "nextCursor": page.next_cursor})


class AuditEntryResponse(_Body):
    """One change to a payment."""

    action: str
    from_status: Status | None
    to_status: Status
    actor_id: str
    at: datetime
    reason: str | None
    correlation_id: str | None

    @classmethod
    def of(cls, entry: po.AuditEntry) -> AuditEntryResponse:
        """The response body for ``entry``."""
        return cls.model_validate(
            {
                "action": entry.action,
                "fromStatus": entry.from_status.value if entry.from_status else None,
                "toStatus": entry.to_status.value,
                "actorId": entry.actor_id,
                "at": entry.at,
                "reason": entry.reason,
                "correlationId": entry.correlation_id,
            }
        )


class DayCounts(_Body):
    """Payments created on one day (UTC), by the status they have now."""

    day: date
    by_status: dict[Status, int]


class SummaryResponse(_Body):
    """Payments at a glance."""

    by_status: dict[Status, int] = Field(description="Every status, zeros included.")
    totals: dict[str, str] = Field(
        description="Amounts added up by currency, as exact decimal strings.",
        examples=[{"USD": "1250.50"}],
    )
    days: list[DayCounts]

    @classmethod
    def of(cls, summary: PaymentSummary) -> SummaryResponse:
        """The response body for ``summary``."""
        data = summary.to_dict()
        return cls.model_validate(
            {
                "byStatus": data["by_status"],
                "totals": data["totals"],
                "days": [{"day": d["day"], "byStatus": d["by_status"]} for d in data["days"]],
            }
        )


Kind = Literal["receivable", "payable", "clearing", "fees", "writeoffs"]


class AccountResponse(_Body):
    """One account of the books."""

    kind: Kind = Field(
        description="`receivable` (what a customer owes), `payable` (what is owed to the"
        " merchant), `clearing` (money in transit at a processor, `manual` by hand),"
        " `fees` (late-fee income) or `writeoffs` (losses)."
    )
    owner: str = Field(
        description="A customer (receivable), the merchant (payable, `default`), a"
        " processor (clearing) or empty for the house's fees and writeoffs.",
        examples=["ABCD-12345"],
    )
    currency: str = Field(examples=["USD"])


class PostingResponse(_Body):
    """One line of a journal entry."""

    account: AccountResponse
    amount: str = Field(
        description="Exact decimal string: a debit is positive, a credit negative.",
        examples=["-100.01"],
    )


class JournalEntryResponse(_Body):
    """A balanced record of one money movement of a payment; never changed."""

    id: UUID
    payment_id: UUID
    operation_id: UUID | None = Field(description="The operation that moved the money.")
    kind: str = Field(
        description="`capture`, `installment`, `refund`, `late_fee`, `waiver`, `write_off`,"
        " `recovery` or `opening`.",
        examples=["capture"],
    )
    at: datetime
    correlation_id: str | None
    lines: list[PostingResponse] = Field(description="They sum to zero in each currency.")

    @classmethod
    def of(cls, entry: po.JournalEntry) -> JournalEntryResponse:
        """The response body for ``entry``."""
        data = entry.to_dict()
        return cls.model_validate(_camel_keys(data))


class BalanceLine(_Body):
    """The total of every account of one kind in one currency."""

    kind: Kind
    currency: str
    amount: str = Field(description="Debits less credits, as an exact decimal string.")


class TrialBalanceResponse(_Body):
    """The books at a glance: totals by kind and currency."""

    balances: list[BalanceLine] = Field(description="Sorted by kind, then currency.")
    balanced: bool = Field(description="Whether the totals of each currency sum to zero.")

    @classmethod
    def of(cls, totals: Mapping[tuple[po.AccountKind, str], Decimal]) -> TrialBalanceResponse:
        """The response body for ``service.trial_balance()``'s ``totals``."""
        sums: dict[str, Decimal] = {}
        for (_, currency), amount in totals.items():
            sums[currency] = sums.get(currency, Decimal(0)) + amount
        lines = [
            BalanceLine(kind=kind.value, currency=currency, amount=str(amount))
            for (kind, currency), amount in sorted(
                totals.items(), key=lambda item: (item[0][0].value, item[0][1])
            )
        ]
        return cls(balances=lines, balanced=not any(sums.values()))


class AccountBalanceResponse(_Body):
    """One account's balance."""

    account: AccountResponse
    balance: str = Field(
        description="Debits less credits, as an exact decimal string (zero for an account"
        " never posted to).",
        examples=["75.00"],
    )

    @classmethod
    def of(cls, account: po.Account, balance: Decimal) -> AccountBalanceResponse:
        """The response body for ``account``'s ``balance``."""
        found = AccountResponse(
            kind=account.kind.value, owner=account.owner, currency=account.currency
        )
        return cls(account=found, balance=str(balance))


class IntegrityProblemResponse(_Body):
    """One thing the integrity check found that does not agree."""

    payment_id: UUID | None = Field(description="Null for the books as a whole.")
    check: str = Field(
        description="`status`, `audit`, `events`, `journal`, `plan` or `exposure`.",
        examples=["journal"],
    )
    detail: str


class IntegrityResponse(_Body):
    """What the integrity check found."""

    ok: bool
    checked: int = Field(description="How many payments were checked.")
    problems: list[IntegrityProblemResponse]

    @classmethod
    def of(cls, report: po.IntegrityReport) -> IntegrityResponse:
        """The response body for ``report``."""
        return cls.model_validate(
            {
                "ok": report.ok,
                "checked": report.checked,
                "problems": [_camel_keys(p.to_dict()) for p in report.problems],
            }
        )


class FieldProblem(_Body):
    """One broken rule."""

    field: str
    message: str
    code: str


class Problem(_Body):
    """An RFC 9457 problem."""

    model_config = ConfigDict(extra="allow", alias_generator=_camel)

    type: str
    title: str
    status: int
    detail: str | None = None
    code: str | None = None
    errors: list[FieldProblem] | None = None


class HealthResponse(_Body):
    """How the service is doing: statuses and figures, nothing private."""

    status: Literal["ok", "degraded", "down"]
    checks: dict[str, dict[str, str | int | float]] = Field(
        description="Per check (store, outbox, operations): its status and figures."
    )
