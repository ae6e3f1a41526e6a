"""The books: a payment's journal, balances and the trial balance, the integrity check."""

from __future__ import annotations

from flask import Blueprint, Response, request

from examples.common import api
from examples.common.access import check_owner
from examples.common.models import (
    AccountBalanceResponse,
    IntegrityResponse,
    JournalEntryResponse,
    TrialBalanceResponse,
)
from examples.flask_app.http import admin, model_response, models_response, reader, service

blueprint = Blueprint("books", __name__, url_prefix="/api")


@blueprint.get("/payments/<payment_id>/journal")
def journal(payment_id: str) -> Response:
    who = reader()
    check_owner(who, service().get_payment(payment_id))
    return models_response([JournalEntryResponse.of(e) for e in service().journal(payment_id)])


@blueprint.get("/ledger/balances")
def balances() -> Response:
    admin()
    account = api.parse_balance_query(request.args)
    if account is None:
        return model_response(TrialBalanceResponse.of(service().trial_balance()))
    return model_response(AccountBalanceResponse.of(account, service().balance(account)))


@blueprint.get("/ledger/verify")
def verify() -> Response:
    admin()
    return model_response(IntegrityResponse.of(service().verify()))
