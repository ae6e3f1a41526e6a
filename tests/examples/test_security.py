"""What makes the examples safe to copy, in both apps: signed webhooks, customers kept
apart, security headers, a document that resolves, health that tells nothing private."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from examples.common.auth import make_token
from examples.common.webhooks import BadSignature, signature, verify
from tests.examples.conftest import SECRET, WEBHOOK_SECRET, Client, FastAPIClient, signed

PROBLEM = "application/problem+json"
NOWHERE = "http://127.0.0.1:9"  # a processor nobody answers for: operations stay pending
EVENT = {"eventId": "evt-1", "outcome": "succeeded", "reference": "ref-1"}
A, B = "ABCD-12345", "WXYZ-00001"


def customer(name: str) -> str:
    return make_token(SECRET, f"user-{name}", ["PaymentUser"], customer=name)


def _create(client: Client, token: str, who: str = A, **body: object) -> Any:
    reply = client("POST", "/api/payments", token=token,
                   json_body={"customerId": who, "amount": "10.00", **body})  # fmt: skip
    assert reply.status == 201, reply.text
    return reply.json


# -- signed webhooks ------------------------------------------------------------------


@pytest.fixture
def routed(make_client: Callable[..., Client]) -> Client:
    """An app that routes to one processor, ``processor-1``."""
    return make_client(processor_urls=(NOWHERE,))


def test_a_signed_webhook_is_taken(routed: Client) -> None:
    """Signed with the shared secret, for a processor the service routes to: applied once."""
    path = "/api/processors/processor-1/events"
    assert routed("POST", path, **signed(EVENT)).json == {"new": True}
    assert routed("POST", path, **signed(EVENT)).json == {"new": False}


@pytest.mark.parametrize(
    "case", ["missing", "bearer-only", "wrong-secret", "other-body", "stale", "garbled"]
)
def test_an_unsigned_webhook_is_refused(routed: Client, admin: str, case: str) -> None:
    """A missing, wrong or stale signature is 401 problem+json, whatever bearer comes with
    it, and changes nothing."""
    body = json.dumps(EVENT).encode()
    headers = {"Content-Type": "application/json"}
    token = None
    if case == "bearer-only":
        token = admin
    elif case == "wrong-secret":
        headers.update(signed(EVENT, secret="a-guess")["headers"])  # noqa: S106
    elif case == "other-body":
        headers.update(signed({**EVENT, "outcome": "declined"})["headers"])
    elif case == "stale":
        headers.update(signed(EVENT, at=int(time.time()) - 301)["headers"])
    elif case == "garbled":
        headers["Paymentorch-Signature"] = "v1=deadbeef"
    path = "/api/processors/processor-1/events"
    reply = routed("POST", path, body=body, headers=headers, token=token)
    assert reply.status == 401, reply.text
    assert reply.headers["content-type"].startswith(PROBLEM)
    assert reply.json["code"] == "bad_signature"
    assert routed("POST", path, **signed(EVENT)).json == {"new": True}  # it was not recorded


def test_a_webhook_for_a_processor_not_routed_to_is_404(
    routed: Client, make_client: Callable[..., Client]
) -> None:
    """A name the service does not route to is 404, even signed; without a processor,
    every name is."""
    reply = routed("POST", "/api/processors/someone-else/events", **signed(EVENT))
    assert (reply.status, reply.json["code"]) == (404, "no_processor")
    alone = make_client()
    reply = alone("POST", "/api/processors/processor-1/events", **signed(EVENT))
    assert (reply.status, reply.json["code"]) == (404, "no_processor")


def test_the_signature_scheme() -> None:
    """HMAC-SHA256 of "<t>.<body>" in hex, five minutes either way, any of several v1."""
    body = b'{"eventId":"e"}'
    header = signature("s3cret", body, at=1_767_225_600)
    assert header == (
        "t=1767225600,v1="
        + __import__("hmac").new(b"s3cret", b"1767225600." + body, "sha256").hexdigest()
    )
    verify("s3cret", header, body, now=1_767_225_600 + 300)
    verify("s3cret", f"{header},v1=00ff", body, now=1_767_225_600)
    for now in (1_767_225_600 + 301, 1_767_225_600 - 301):
        with pytest.raises(BadSignature, match="300 seconds"):
            verify("s3cret", header, body, now=now)
    with pytest.raises(BadSignature, match="does not match"):
        verify("s3cret", header.replace("t=1767225600", "t=1767225601"), body, now=1_767_225_600)
    with pytest.raises(BadSignature, match="does not match"):
        verify("s3cret", "t=1767225600,v1=é", body, now=1_767_225_600)


# -- customers kept apart -------------------------------------------------------------


def test_a_customer_lists_only_its_own(client: Client, admin: str) -> None:
    """A PaymentUser's list and summary hold its customer's payments, whatever the query."""
    mine = _create(client, customer(A))
    _create(client, admin, B, amount="99.00")
    for query in ("", f"?customerId={B}", f"?customerId={A}"):
        listed = client("GET", f"/api/payments{query}", token=customer(A)).json
        assert [p["id"] for p in listed["items"]] == [mine["id"]]
    summary = client("GET", f"/api/payments/summary?customerId={B}", token=customer(A)).json
    assert summary["totals"] == {"USD": "10.00"}
    everyone = client("GET", "/api/payments", token=admin).json["items"]
    assert len(everyone) == 2


def test_a_customer_reads_only_its_own(client: Client, admin: str) -> None:
    """Another customer's payment, audit trail, plan and operations are 404, as if absent."""
    theirs = _create(client, admin, B, plan={"installments": 4})
    mine = _create(client, customer(A), plan={"installments": 4})
    for tail in ("", "/audit", "/plan", "/operations"):
        assert client("GET", f"/api/payments/{mine['id']}{tail}", token=customer(A)).status == 200
        reply = client("GET", f"/api/payments/{theirs['id']}{tail}", token=customer(A))
        assert (reply.status, reply.json["code"]) == (404, "payment_not_found"), tail
        assert client("GET", f"/api/payments/{theirs['id']}{tail}", token=admin).status == 200


def test_a_customer_creates_only_for_itself(client: Client, admin: str) -> None:
    """Creating for another customer is 403 and creates nothing; a user without a customer
    is refused everything."""
    reply = client("POST", "/api/payments", token=customer(A),
                   json_body={"customerId": B, "amount": "10.00"})  # fmt: skip
    assert (reply.status, reply.json["code"]) == (403, "permission_denied")
    assert client("GET", "/api/payments", token=admin).json["items"] == []
    nobody = make_token(SECRET, "u-0", ["PaymentUser"])
    assert client("GET", "/api/payments", token=nobody).status == 403
    reply = client("POST", "/api/payments", token=nobody,
                   json_body={"customerId": A, "amount": "10.00"})  # fmt: skip
    assert reply.status == 403


def test_everything_beyond_creation_needs_an_admin(client: Client, admin: str) -> None:
    """The attention list, infrastructure and every write but creation are 403 for a user,
    on its own payment too; a user is offered no action."""
    mine = _create(client, customer(A))
    assert mine["allowedActions"] == []
    assert client("GET", "/api/operations/attention", token=customer(A)).status == 403
    assert client("GET", "/api/infrastructure", token=customer(A)).status == 403
    path = f"/api/payments/{mine['id']}"
    for action, body in (("confirm", None), ("authorize", None), ("fail", {"reason": "x"}),
                         ("cancel", None), ("capture", None), ("refunds", None)):  # fmt: skip
        reply = client("POST", f"{path}/{action}", token=customer(A), json_body=body)
        assert reply.status == 403, action
    assert client("GET", path, token=customer(A)).json["status"] == "Pending"
    seen = client("GET", path, token=admin).json
    assert seen["allowedActions"] == ["authorize", "confirm", "fail", "cancel"]


def test_no_status_change_is_offered_while_the_processor_works(routed: Client, admin: str) -> None:
    """A charge under way: the API offers nothing until the processor's answer lands."""
    made = _create(routed, admin, captureMethod="automatic")
    assert made["allowedActions"] == []
    listed = routed("GET", "/api/payments", token=admin).json["items"]
    assert [p["allowedActions"] for p in listed] == [[]]
    plain = _create(routed, admin)
    assert plain["allowedActions"] == ["authorize", "confirm", "fail", "cancel"]


def test_a_capture_method_without_a_processor_is_refused_plainly(
    client: Client, admin: str
) -> None:
    """The 422 speaks to the API's user, not to the developer who opened the service."""
    body = {"customerId": A, "amount": "1.00", "captureMethod": "automatic"}
    reply = client("POST", "/api/payments", token=admin, json_body=body)
    assert reply.status == 422
    (error,) = reply.json["errors"]
    assert error["field"] == "captureMethod"
    assert "processor=" not in error["message"]
    assert "no processor" in error["message"]


# -- headers, the document, health ----------------------------------------------------

SECURITY = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/", "text/html"),
        ("/api/payments", "application/json"),
        ("/api/payments?limit=0", PROBLEM),
        ("/api/nowhere", PROBLEM),
        ("/static/style.css", "text/css"),
        ("/static/js/app.js", "text/javascript"),
        ("/docs", "text/html"),
        ("/redoc", "text/html"),
        ("/docs-assets/swagger-ui.css", "text/css"),
        ("/openapi.json", "application/json"),
        ("/health/ready", "application/json"),
    ],
)
def test_every_response_carries_the_security_headers(
    client: Client, admin: str, path: str, kind: str
) -> None:
    """Pages, API answers, problems, static files and the docs: CSP, nosniff, DENY."""
    reply = client("GET", path, token=admin)
    assert reply.headers["content-type"].startswith(kind), reply.headers["content-type"]
    assert SECURITY.items() <= reply.headers.items()
    policy = dict(
        part.strip().split(" ", 1) for part in reply.headers["content-security-policy"].split(";")
    )
    assert (policy["default-src"], policy["frame-ancestors"]) == ("'self'", "'none'")
    assert policy["script-src"] == "'self'"
    assert not any("http" in source for source in policy.values())


def test_a_refused_request_carries_them_too(client: Client) -> None:
    """401, 405 and a failure nobody planned for answer with the headers as well."""
    for method, path in (("GET", "/api/payments"), ("DELETE", "/api/payments")):
        assert SECURITY.items() <= client(method, path).headers.items()


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if "$ref" in node else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_every_ref_in_the_document_resolves(client: Client, settings: Any) -> None:
    """Every $ref points inside the document, and both apps serve the same document."""
    document = client("GET", "/openapi.json").json
    refs = _refs(document)
    assert len(refs) > 100
    for ref in set(refs):
        assert isinstance(_resolve(document, ref), dict), ref
    assert "$defs" not in json.dumps(document)
    fastapi = FastAPIClient(settings)
    try:
        assert fastapi("GET", "/openapi.json").json == document
    finally:
        fastapi.close()


def test_health_says_nothing_private(client: Client) -> None:
    """/health/ready holds statuses and figures; down, no driver text, and Retry-After."""
    ready = client("GET", "/health/ready").json
    assert set(ready["checks"]["store"]) == {"status", "latency_ms"}
    client.break_store()
    down = client("GET", "/health/ready")
    assert (down.status, down.json) == (503, {"status": "down",
                                              "checks": {"store": {"status": "down"},
                                                         "outbox": {}}})  # fmt: skip
    assert down.headers["retry-after"] == "5"


def test_an_unavailable_store_says_when_to_retry(client: Client, admin: str) -> None:
    """A 503 problem carries Retry-After, as paymentorch.http.retry_after advises."""
    made = _create(client, admin)
    client.break_store()
    reply = client("GET", f"/api/payments/{made['id']}", token=admin)
    assert (reply.status, reply.headers.get("retry-after")) == (503, "1"), reply.text


def test_webhook_secret_is_not_the_jwt_secret(settings: Any) -> None:
    """The fixtures keep the two secrets apart, as production must."""
    assert settings.webhook_secret == WEBHOOK_SECRET != settings.jwt_secret
