"""The books: a payment's journal, balances and the trial balance, the integrity check."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from examples.common import api
from examples.common.access import check_owner
from examples.common.models import (
    AccountBalanceResponse,
    IntegrityResponse,
    JournalEntryResponse,
    Kind,
    TrialBalanceResponse,
)
from examples.fastapi_app.dependencies import (
    READ,
    READ_ONE,
    Admin,
    CorrelationHeader,
    ExactRoute,
    PaymentId,
    Reader,
    Service,
    known_query,
    problems,
)

router = APIRouter(prefix="/api", tags=["books"], route_class=ExactRoute)


@router.get(
    "/payments/{payment_id}/journal",
    response_model=list[JournalEntryResponse],
    responses=READ_ONE,
)
async def journal(
    payment_id: PaymentId, svc: Service, who: Reader, _correlation: CorrelationHeader = None
) -> list[JournalEntryResponse]:
    """The payment's journal entries, oldest first: each money movement, balanced."""
    check_owner(who, await svc.get_payment(payment_id))
    return [JournalEntryResponse.of(e) for e in await svc.journal(payment_id)]


@router.get(
    "/ledger/balances",
    response_model=TrialBalanceResponse | AccountBalanceResponse,
    dependencies=[Depends(known_query(api.BALANCE_QUERY))],
    responses=READ,
)
async def balances(
    svc: Service,
    _who: Admin,
    _correlation: CorrelationHeader = None,
    kind: Annotated[Kind | None, Query(description="With `currency`: one account.")] = None,
    owner: Annotated[
        str | None,
        Query(
            max_length=api.OWNER_LENGTH,
            description="The account's owner: a customer, a merchant (`default`) or a"
            " processor (`manual` for money moved by hand); left out for fees and writeoffs.",
        ),
    ] = None,
    currency: Annotated[
        str | None, Query(min_length=3, max_length=3, description="ISO 4217 code.")
    ] = None,
) -> TrialBalanceResponse | AccountBalanceResponse:
    """The trial balance (totals by kind and currency, and whether each currency sums to
    zero); given `kind`, `currency` and (but for fees and writeoffs) `owner`, that one
    account's balance."""
    account = api.ledger_account(kind, owner, currency)
    if account is None:
        return TrialBalanceResponse.of(await svc.trial_balance())
    return AccountBalanceResponse.of(account, await svc.balance(account))


@router.get("/ledger/verify", response_model=IntegrityResponse, responses=problems(401, 403, 503))
async def verify(
    svc: Service, _who: Admin, _correlation: CorrelationHeader = None
) -> IntegrityResponse:
    """Check every payment against its audit trail, events, journal and plan, the books as
    a whole and each customer's exposure (reads everything, changes nothing)."""
    return IntegrityResponse.of(await svc.verify())
