"""The example API's charge-off, run against both apps: offered while the plan runs,
PaymentAdmin only, a reason required, 409 once it is not running, recoveries after."""

from __future__ import annotations

from typing import Any

from tests.examples.conftest import Client


def _confirmed_plan(client: Client, user: str, admin: str) -> str:
    body = {"customerId": "ABCD-12345", "amount": "100.00", "plan": {"installments": 4}}
    made = client("POST", "/api/payments", token=user, json_body=body)
    assert made.status == 201, made.text
    pid: str = made.json["id"]
    assert client("POST", f"/api/payments/{pid}/confirm", token=admin).status == 200
    return pid


def _allowed(client: Client, admin: str, pid: str) -> Any:
    return client("GET", f"/api/payments/{pid}", token=admin).json["allowedActions"]


def test_a_plan_is_charged_off_and_recovered(client: Client, user: str, admin: str) -> None:
    """An admin charges off a running plan with a reason: the plan says `charged_off`,
    the journal writes off what was owed, the audit trail keeps the reason; the payment
    then offers only a refund and payments by hand, which are recoveries."""
    pid = _confirmed_plan(client, user, admin)
    assert _allowed(client, admin, pid) == ["refund", "pay_installment", "waive_installment",
                                            "charge_off"]  # fmt: skip
    listed = client("GET", "/api/payments", token=admin).json["items"]
    assert [p["allowedActions"] for p in listed if p["id"] == pid] == [_allowed(client, admin, pid)]
    path = f"/api/payments/{pid}/plan/charge-off"
    assert client("POST", path, token=user, json_body={"reason": "past due"}).status == 403
    done = client("POST", path, token=admin, json_body={"reason": "120 days past due"})
    assert done.status == 200, done.text
    assert (done.json["status"], done.json["owed"]) == ("charged_off", "75.00")
    assert _allowed(client, admin, pid) == ["refund", "pay_installment"]
    trail = client("GET", f"/api/payments/{pid}/audit", token=admin).json
    assert (trail[-1]["action"], trail[-1]["reason"]) == ("charged_off", "120 days past due")
    paid = client("POST", f"/api/payments/{pid}/plan/installments/2/pay", token=admin)
    assert (paid.status, paid.json["status"], paid.json["owed"]) == (200, "charged_off", "50.00")
    journal = client("GET", f"/api/payments/{pid}/journal", token=admin).json
    assert [e["kind"] for e in journal] == ["capture", "write_off", "recovery"]
    again = client("POST", path, token=admin, json_body={"reason": "once more"})
    assert (again.status, again.json["code"]) == (409, "invalid_transition")
    assert client("GET", "/api/ledger/verify", token=admin).json["ok"] is True


def test_a_charge_off_needs_a_reason_and_a_running_plan(
    client: Client, user: str, admin: str
) -> None:
    """No reason, an empty or overlong one is a 422 naming `reason` and changes nothing;
    a payment without a plan, or with one that does not run, is a 409; no payment, 404."""
    pid = _confirmed_plan(client, user, admin)
    path = f"/api/payments/{pid}/plan/charge-off"
    for body in ({}, {"reason": ""}, {"reason": "x" * 501}, {"reason": 7}):
        refused = client("POST", path, token=admin, json_body=body)
        assert refused.status == 422, (body, refused.text)
        assert [e["field"] for e in refused.json["errors"]] == ["reason"]
    assert client("GET", f"/api/payments/{pid}/plan", token=admin).json["status"] == "active"
    plain = client("POST", "/api/payments", token=user,
                   json_body={"customerId": "ABCD-12345", "amount": "5.00"}).json  # fmt: skip
    client("POST", f"/api/payments/{plain['id']}/confirm", token=admin)
    no_plan = client("POST", f"/api/payments/{plain['id']}/plan/charge-off", token=admin,
                     json_body={"reason": "past due"})  # fmt: skip
    assert (no_plan.status, no_plan.json["code"]) == (409, "invalid_transition")
    body = {"customerId": "ABCD-12345", "amount": "40.00", "plan": {"installments": 4}}
    pending = client("POST", "/api/payments", token=user, json_body=body).json
    not_yet = client("POST", f"/api/payments/{pending['id']}/plan/charge-off", token=admin,
                     json_body={"reason": "past due"})  # fmt: skip
    assert not_yet.status == 409
    missing = "/api/payments/01890a5d-ac96-774b-bcce-b302099a8057/plan/charge-off"
    assert client("POST", missing, token=admin, json_body={"reason": "past due"}).status == 404
