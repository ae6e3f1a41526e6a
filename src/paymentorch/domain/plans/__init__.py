"""Installment plans (pay-in-N): the schedule, refund allocation and late fees, pure.

Amounts are exact: every split works in whole minor units of the currency (cents for
USD, yen for JPY, fils for KWD), so installments always add up to the order.

- ``model``: the plan and its parts (terms, installments, late fees, statuses).
- ``splits``: an order's schedule and a refund's allocation, in whole minor units.
- ``fees``: the late-fee policy, and what a late installment is charged.
- ``lifecycle``: what confirming, paying, waiving, refunding, lateness and a charge-off do
  to a plan.
"""

from paymentorch.domain.plans.fees import (
    MAX_DELAY,
    MAX_FEE,
    LateFeePolicy,
    fee_policies,
    fees_due,
    overdue,
)
from paymentorch.domain.plans.lifecycle import (
    PlanEvents,
    activate,
    after_payment,
    charge_off,
    close,
    mark_overdue,
    new_plan,
    pay,
    refund_on_plan,
    refunded_total,
    waive,
)
from paymentorch.domain.plans.model import (
    ACCEPTS_PAYMENT,
    MAX_INTERVAL,
    RUNNING,
    UNPAID,
    Installment,
    InstallmentStatus,
    LateFee,
    Plan,
    PlanStatus,
    PlanTerms,
)
from paymentorch.domain.plans.splits import Allocation, allocate_refund, schedule, split

__all__ = [
    "ACCEPTS_PAYMENT",
    "MAX_DELAY",
    "MAX_FEE",
    "MAX_INTERVAL",
    "RUNNING",
    "UNPAID",
    "Allocation",
    "Installment",
    "InstallmentStatus",
    "LateFee",
    "LateFeePolicy",
    "Plan",
    "PlanEvents",
    "PlanStatus",
    "PlanTerms",
    "activate",
    "after_payment",
    "allocate_refund",
    "charge_off",
    "close",
    "fee_policies",
    "fees_due",
    "mark_overdue",
    "new_plan",
    "overdue",
    "pay",
    "refund_on_plan",
    "refunded_total",
    "schedule",
    "split",
    "waive",
]
