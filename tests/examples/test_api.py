"""The example API, run against both apps: endpoints, JSON, errors, auth and limits."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from examples.common.auth import AUDIENCE, ISSUER
from examples.common.settings import Settings
from tests.examples.conftest import SECRET, Client, FastAPIClient, Reply

PROBLEM = "application/problem+json"


def create(client: Client, token: str, **body: object) -> dict[str, object]:
    reply = client(
        "POST",
        "/api/payments",
        json_body={"customerId": "ABCD-12345", "amount": "10.00", **body},
        token=token,
    )
    assert reply.status == 201, reply.text
    return reply.json  # type: ignore[no-any-return]


def test_create_returns_camel_case_and_location(client: Client, user: str) -> None:
    """201 with a Location header and camelCase JSON, amounts as exact strings."""
    reply = client(
        "POST",
        "/api/payments",
        json_body={"customerId": "ABCD-12345", "amount": 125.5, "metadata": {"order": "1"}},
        token=user,
    )
    assert reply.status == 201
    body = reply.json
    assert reply.headers["location"] == f"/api/payments/{body['id']}"
    assert body["amount"] == "125.50"
    assert (body["customerId"], body["status"], body["currency"]) == (
        "ABCD-12345",
        "Pending",
        "USD",
    )
    assert set(body) >= {"createdAt", "updatedAt", "failureReason", "idempotencyKey", "metadata"}


def test_json_numbers_are_read_exactly(client: Client, user: str) -> None:
    """0.1 is 0.10; 10.005 USD is refused, never rounded through a float."""
    raw = b'{"customerId": "ABCD-12345", "amount": 0.1}'
    reply = client(
        "POST", "/api/payments", body=raw, token=user, headers={"Content-Type": "application/json"}
    )
    assert reply.json["amount"] == "0.10"
    reply = client(
        "POST",
        "/api/payments",
        json_body={"customerId": "ABCD-12345", "amount": 10.005},
        token=user,
    )
    assert reply.status == 422
    assert [e["field"] for e in reply.json["errors"]] == ["amount"]
    big = b'{"customerId": "ABCD-12345", "amount": 999999.99}'
    json_type = {"Content-Type": "application/json"}
    reply = client("POST", "/api/payments", body=big, token=user, headers=json_type)
    assert reply.json["amount"] == "999999.99"


def test_idempotency_key(client: Client, user: str) -> None:
    """A repeat with the same key returns the same payment; another body is a 409."""
    headers = {"Idempotency-Key": "order-981"}
    body = {"customerId": "ABCD-12345", "amount": "10.00"}
    first = client("POST", "/api/payments", json_body=body, token=user, headers=headers)
    again = client("POST", "/api/payments", json_body=body, token=user, headers=headers)
    assert first.json["id"] == again.json["id"]
    other = client(
        "POST", "/api/payments", json_body={**body, "amount": "11.00"}, token=user, headers=headers
    )
    assert other.status == 409
    assert other.headers["content-type"].startswith(PROBLEM)
    assert other.json["code"] == "idempotency_conflict"


def test_get_list_and_audit(client: Client, user: str, admin: str) -> None:
    """Reads return what was written, newest first, with filters and paging."""
    made = [create(client, user, amount=str(i + 1)) for i in range(5)]
    client("POST", f"/api/payments/{made[0]['id']}/confirm", token=admin)
    one = client("GET", f"/api/payments/{made[0]['id']}", token=user)
    assert one.json["status"] == "Confirmed"
    page = client("GET", "/api/payments?limit=2", token=user).json
    assert [p["id"] for p in page["items"]] == [made[4]["id"], made[3]["id"]]
    rest = client("GET", f"/api/payments?limit=10&cursor={page['nextCursor']}", token=user).json
    assert [p["id"] for p in rest["items"]] == [m["id"] for m in reversed(made[:3])]
    assert rest["nextCursor"] is None
    confirmed = client("GET", "/api/payments?status=Confirmed", token=user).json
    assert [p["id"] for p in confirmed["items"]] == [made[0]["id"]]
    mine = client("GET", "/api/payments?customerId=WXYZ-00000", token=admin).json
    assert mine["items"] == []
    audit = client("GET", f"/api/payments/{made[0]['id']}/audit", token=user).json
    assert [(e["action"], e["actorId"]) for e in audit] == [
        ("created", "u-17"),
        ("confirmed", "ops-3"),
    ]


@pytest.mark.parametrize("path", ["simulate-confirmation/{id}", "{id}/confirm"])
def test_confirm_routes(client: Client, user: str, admin: str, path: str) -> None:
    """Both confirmation paths confirm; a second attempt is a 409 problem."""
    payment = create(client, user)
    url = "/api/payments/" + path.format(id=payment["id"])
    assert client("POST", url, token=admin).json["status"] == "Confirmed"
    again = client("POST", url, token=admin)
    assert again.status == 409
    assert again.json["code"] == "invalid_transition"


def test_fail_and_cancel(client: Client, user: str, admin: str) -> None:
    """fail needs a reason; cancel takes an optional one."""
    a, b = create(client, user), create(client, user)
    missing = client("POST", f"/api/payments/{a['id']}/fail", json_body={}, token=admin)
    assert missing.status == 422
    assert [e["field"] for e in missing.json["errors"]] == ["reason"]
    failed = client(
        "POST", f"/api/payments/{a['id']}/fail", json_body={"reason": "declined"}, token=admin
    )
    assert (failed.json["status"], failed.json["failureReason"]) == ("Failed", "declined")
    assert client("POST", f"/api/payments/{b['id']}/cancel", token=admin).json["status"] == (
        "Cancelled"
    )


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (b"{not json", ["body"]),
        (b"[1, 2]", ["body"]),
        (b"", ["body"]),
        (b'{"customerId": "ABCD-12345", "amount": NaN}', ["body"]),
        (b'{"customerId": "ABCD-12345", "amount": "1", "colour": "red"}', ["colour"]),
        (b'{"customerId": "bad", "amount": 1.001, "extra": 1}', ["customerId", "amount", "extra"]),
        (b'{"customerId": "ABCD-12345", "amount": "1", "amount": "2"}', ["body"]),
        (b'{"customerId": 12345, "amount": "1"}', ["customerId"]),
        (b"[" * 1000 + b"]" * 1000, ["body"]),
        (b'{"amount": "1"}', ["customerId"]),
    ],
)
def test_bad_bodies_are_problems(client: Client, user: str, body: bytes, fields: list[str]) -> None:
    """Malformed JSON and unknown fields are 422 problem+json listing every field."""
    reply = client(
        "POST", "/api/payments", body=body, token=user, headers={"Content-Type": "application/json"}
    )
    assert reply.status == 422
    assert reply.headers["content-type"].startswith(PROBLEM)
    assert [e["field"] for e in reply.json["errors"]] == fields


def test_not_found_and_bad_ids(client: Client, user: str) -> None:
    """An unknown id is 404, a malformed one 422, an unknown route 404: all problems."""
    missing = client("GET", "/api/payments/01a21718-8031-76d8-821e-d5cf28d29097", token=user)
    assert (missing.status, missing.json["code"]) == (404, "payment_not_found")
    bad = client("GET", "/api/payments/not-a-uuid", token=user)
    assert (bad.status, bad.json["errors"][0]["field"]) == (422, "paymentId")
    nowhere = client("GET", "/api/nowhere", token=user)
    assert nowhere.status == 404
    assert nowhere.headers["content-type"].startswith(PROBLEM)
    for query in ("limit=0", "limit=x", "status=Paid", "cursor=zzz", "colour=red"):
        assert client("GET", f"/api/payments?{query}", token=user).status == 422


def _token(**claims: object) -> str:
    now = int(time.time())
    base = {
        "sub": "u-1",
        "roles": ["PaymentAdmin"],
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 60,
    }
    return jwt.encode({**base, **claims}, SECRET, algorithm="HS256")


@pytest.mark.parametrize(
    ("token", "read", "create_", "confirm"),
    [
        (None, 401, 401, 401),
        (
            jwt.encode(
                {"sub": "x", "exp": 9999999999},
                "wrong-secret-wrong-secret-32bytes!",
                algorithm="HS256",
            ),
            401,
            401,
            401,
        ),
        ({"exp": -10}, 401, 401, 401),
        ({"aud": "someone-else"}, 401, 401, 401),
        ({"iss": "someone-else"}, 401, 401, 401),
        ({"roles": []}, 403, 403, 403),
        ({"roles": ["PaymentUser"]}, 403, 403, 403),
        ({"roles": ["PaymentUser"], "customer": "ABCD-12345"}, 200, 201, 403),
        ({"roles": ["PaymentAdmin"]}, 200, 201, 200),
    ],
    ids=[
        "none",
        "bad-signature",
        "expired",
        "wrong-audience",
        "wrong-issuer",
        "no-role",
        "user-without-customer",
        "user",
        "admin",
    ],
)
def test_auth_matrix(
    client: Client, admin: str, token: Any, read: int, create_: int, confirm: int
) -> None:
    """Every /api route needs a valid token; roles decide what it may do."""
    if isinstance(token, dict):  # claims: signed now, so the token is fresh when used
        token = _token(**{**token, "exp": int(time.time()) + token.get("exp", 60)})
    target = create(client, admin)
    assert client("GET", "/api/payments", token=token).status == read
    made = client(
        "POST", "/api/payments", json_body={"customerId": "ABCD-12345", "amount": "1"}, token=token
    )
    assert made.status == create_
    reply = client("POST", f"/api/payments/{target['id']}/confirm", token=token)
    assert reply.status == confirm
    if confirm == 401:
        assert reply.headers["www-authenticate"].startswith("Bearer")
    assert reply.headers["content-type"].startswith(
        PROBLEM if confirm != 200 else "application/json"
    )


def test_correlation_id_is_echoed_and_recorded(client: Client, user: str) -> None:
    """X-Correlation-ID is echoed and tags the audit entry; one is made up when missing."""
    reply = client(
        "POST",
        "/api/payments",
        json_body={"customerId": "ABCD-12345", "amount": "1"},
        token=user,
        headers={"X-Correlation-ID": "req-42"},
    )
    assert reply.headers["x-correlation-id"] == "req-42"
    audit = client("GET", f"/api/payments/{reply.json['id']}/audit", token=user).json
    assert audit[0]["correlationId"] == "req-42"
    generated = client("GET", "/health/live").headers["x-correlation-id"]
    assert len(generated) == 36


def test_rate_limit(make_client: Callable[..., Client], user: str) -> None:
    """POSTs past the limit get 429 problem+json with Retry-After; reads are not limited."""
    client = make_client(rate_limit="2/minute")
    body = {"customerId": "ABCD-12345", "amount": "1"}
    assert [
        client("POST", "/api/payments", json_body=body, token=user).status for _ in range(3)
    ] == [201, 201, 429]
    limited = client("POST", "/api/payments", json_body=body, token=user)
    assert limited.headers["content-type"].startswith(PROBLEM)
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert client("GET", "/api/payments", token=user).status == 200


def test_health(client: Client) -> None:
    """live is 200; ready is 200 while the store answers and 503 once it cannot."""
    assert client("GET", "/health/live").json == {"status": "ok"}
    ready = client("GET", "/health/ready")
    assert (ready.status, ready.json["status"]) == (200, "ok")
    client.break_store()
    down = client("GET", "/health/ready")
    assert (down.status, down.json["status"]) == (503, "down")


def test_cors(make_client: Callable[..., Client]) -> None:
    """Configured origins get CORS headers; others do not."""
    client = make_client(cors_origins=("http://shop.example",))
    preflight = {
        "Origin": "http://shop.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    reply = client("OPTIONS", "/api/payments", headers=preflight)
    assert reply.headers.get("access-control-allow-origin") == "http://shop.example"
    other = client("GET", "/health/live", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_metrics(make_client: Callable[..., Client], user: str) -> None:
    """With PAYMENTORCH_OTEL=1 the library's metrics are served for Prometheus."""
    plain = make_client()
    assert plain("GET", "/metrics").status == 404
    client = make_client(telemetry=True)
    create(client, user)
    reply = client("GET", "/metrics")
    assert reply.status == 200
    assert "paymentorch_payments_created" in reply.text
    # Durations are in seconds, with buckets for seconds (100 µs to 10 s).
    assert 'paymentorch_operation_duration_seconds_bucket{le="0.001"' in reply.text


def test_dashboard_and_dev_tokens(make_client: Callable[..., Client]) -> None:
    """/ serves the dashboard; /dev/token works only in development mode."""
    client = make_client()
    page = client("GET", "/")
    assert page.status == 200
    assert "PaymentOrchestrator Lite" in page.text
    assert client("GET", "/static/js/app.js").status == 200
    assert client("GET", "/dev/token").status == 404
    dev = make_client(dev_mode=True)
    token = dev("GET", "/dev/token?role=PaymentAdmin").json["token"]
    assert dev("GET", "/api/payments", token=token).status == 200


def test_token_command() -> None:
    """python -m examples.token prints a token the apps accept, given the secret."""
    env = {"PAYMENTORCH_JWT_SECRET": SECRET, "PATH": ""}
    result = subprocess.run(
        [sys.executable, "-m", "examples.token", "--role", "PaymentAdmin"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    claims = jwt.decode(result.stdout.strip(), SECRET, algorithms=["HS256"], audience=AUDIENCE)
    assert claims["roles"] == ["PaymentAdmin"]
    missing = subprocess.run(
        [sys.executable, "-m", "examples.token"],
        capture_output=True,
        text=True,
        env={"PATH": ""},
        check=False,
    )
    assert missing.returncode == 2
    assert "/dev/token" in missing.stderr


def test_openapi_docs(settings: Settings) -> None:
    """The FastAPI app documents itself, and serves Swagger UI and ReDoc with no CDN."""
    client = FastAPIClient(settings)
    try:
        for page, asset in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
            html = client("GET", page).text
            assert f"/docs-assets/{asset}" in html
            assert "cdn" not in html.lower()
            assert client("GET", f"/docs-assets/{asset}").status == 200
        spec = client("GET", "/openapi.json").json
        assert {"/api/payments", "/api/payments/{payment_id}/fail"} <= set(spec["paths"])
        assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
        create = spec["paths"]["/api/payments"]["post"]
        assert {p["name"] for p in create["parameters"]} >= {"Idempotency-Key", "X-Correlation-ID"}
        assert {"401", "403", "409", "413", "415", "422", "429", "503"} <= set(create["responses"])
        problem = create["responses"]["422"]["content"]
        assert list(problem) == ["application/problem+json"]
        body = create["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert body.endswith("/CreatePaymentRequest")
        listing = spec["paths"]["/api/payments"]["get"]["parameters"]
        assert {p["name"] for p in listing} >= {"status", "customerId", "limit", "cursor"}
    finally:
        client.close()


def _problem(reply: Reply, status: int) -> dict[str, object]:
    assert reply.status == status, reply.text
    assert reply.headers["content-type"].startswith(PROBLEM)
    body: dict[str, object] = reply.json
    assert body["status"] == status
    return body


def test_bodies_over_the_limit_are_refused(make_client: Callable[..., Client], user: str) -> None:
    """A body larger than the limit is 413 before it is read whole, and creates nothing."""
    client = make_client(max_body=1024)
    big = {"customerId": "ABCD-12345", "amount": "1", "metadata": {"note": "x" * 2000}}
    _problem(client("POST", "/api/payments", json_body=big, token=user), 413)
    assert client("GET", "/api/payments", token=user).json["items"] == []


def test_only_json_bodies_are_read(client: Client, user: str) -> None:
    """A body sent as anything but JSON is 415; an empty body needs no type."""
    form = b"customerId=ABCD-12345&amount=1"
    reply = client(
        "POST",
        "/api/payments",
        body=form,
        token=user,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    _problem(reply, 415)
    made = create(client, user)
    assert client("POST", f"/api/payments/{made['id']}/cancel", token=user).status == 403


def test_reasons_must_be_strings(client: Client, user: str, admin: str) -> None:
    """A non-string reason is refused like a non-string customerId, naming the field."""
    made = create(client, user)
    reply = client(
        "POST", f"/api/payments/{made['id']}/fail", json_body={"reason": 42}, token=admin
    )
    body = _problem(reply, 422)
    assert [e["field"] for e in body["errors"]] == ["reason"]  # type: ignore[attr-defined]
    assert client("GET", f"/api/payments/{made['id']}", token=user).json["status"] == "Pending"


def test_detail_names_fields_as_errors_do(client: Client, user: str) -> None:
    """The problem's detail and errors[].field use the same (camelCase) names."""
    reply = client(
        "POST", "/api/payments", json_body={"customerId": "nope", "amount": "1"}, token=user
    )
    body = _problem(reply, 422)
    assert [e["field"] for e in body["errors"]] == ["customerId"]  # type: ignore[attr-defined]
    assert "customerId" in str(body["detail"])
    assert "customer_id:" not in str(body["detail"])  # (the library's setting may be named)


def test_wrong_methods_say_what_is_allowed(client: Client, user: str) -> None:
    """405 is a problem with an Allow header."""
    reply = client("DELETE", "/api/payments", token=user)
    _problem(reply, 405)
    assert {"GET", "POST"} <= {m.strip() for m in reply.headers["allow"].split(",")}


def test_bearer_is_case_insensitive(client: Client, user: str) -> None:
    """`bearer` and `BEARER` are the Bearer scheme (RFC 9110: schemes are case-insensitive)."""
    for scheme in ("bearer", "BEARER"):
        reply = client("GET", "/api/payments", headers={"Authorization": f"{scheme} {user}"})
        assert reply.status == 200


def test_dev_tokens_only_for_known_roles(make_client: Callable[..., Client]) -> None:
    """/dev/token with an unknown role is a 422, never an admin token."""
    dev = make_client(dev_mode=True)
    body = _problem(dev("GET", "/dev/token?role=Superuser"), 422)
    assert [e["field"] for e in body["errors"]] == ["role"]  # type: ignore[attr-defined]
    assert _problem(dev("GET", "/dev/token?role=PaymentUser"), 422)["errors"] == [
        {"field": "customer", "message": "is required for a PaymentUser", "code": "required"}
    ]
    made = dev("GET", "/dev/token?role=PaymentUser&customer=ABCD-12345").json
    assert made["role"] == "PaymentUser"
    claims = jwt.decode(made["token"], options={"verify_signature": False})
    assert claims["customer"] == "ABCD-12345"


def test_an_empty_idempotency_key_is_refused(client: Client, user: str) -> None:
    """An Idempotency-Key header sent empty is a 422, not a request without a key."""
    reply = client(
        "POST",
        "/api/payments",
        json_body={"customerId": "ABCD-12345", "amount": "1"},
        token=user,
        headers={"Idempotency-Key": ""},
    )
    _problem(reply, 422)
    assert client("GET", "/api/payments", token=user).json["items"] == []


def test_a_replay_answers_as_the_original(client: Client, user: str) -> None:
    """A repeated creation is 201 with the same body and Idempotent-Replayed: true."""
    body = {"customerId": "ABCD-12345", "amount": "5.00"}
    headers = {"Idempotency-Key": "order-77"}
    first = client("POST", "/api/payments", json_body=body, token=user, headers=headers)
    again = client("POST", "/api/payments", json_body=body, token=user, headers=headers)
    assert (first.status, again.status) == (201, 201)
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json == first.json
    assert again.headers["location"] == first.headers["location"]


def test_unexpected_errors_are_problems(client: Client, user: str) -> None:
    """A failure nobody planned for is a bare 500 problem that reveals nothing."""
    made = create(client, user)
    client.sabotage()
    body = _problem(client("GET", f"/api/payments/{made['id']}", token=user), 500)
    assert body["code"] == "internal_error"
    assert "sabotage" not in str(body)


def test_listing_by_period_and_the_summary(client: Client, user: str, admin: str) -> None:
    """createdFrom/createdTo filter the listing; the summary counts and adds up exactly."""
    made = [create(client, user, amount=amount) for amount in ("0.10", "0.20", "3.00")]
    client("POST", f"/api/payments/{made[0]['id']}/confirm", token=admin)
    summary = client("GET", "/api/payments/summary", token=user).json
    assert summary["byStatus"] == {
        "Pending": 2,
        "Authorized": 0,
        "Confirmed": 1,
        "Failed": 0,
        "Cancelled": 0,
        "Refunded": 0,
    }
    assert summary["totals"] == {"USD": "3.30"}
    assert sum(summary["days"][0]["byStatus"].values()) == 3
    window = urllib.parse.urlencode({"createdFrom": made[1]["createdAt"]})
    later = client("GET", f"/api/payments?{window}", token=user).json["items"]
    assert [p["id"] for p in later] == [made[2]["id"], made[1]["id"]]
    assert client("GET", "/api/payments?createdFrom=yesterday", token=user).status == 422
    naive = urllib.parse.urlencode({"createdFrom": "2026-01-01T00:00:00"})
    assert client("GET", f"/api/payments?{naive}", token=user).status == 422


def test_authorize_capture_and_refund(client: Client, user: str, admin: str) -> None:
    """Authorize, capture part, refund in parts with a key; over-asks are 409 problems."""
    made = create(client, user, amount="100.00")
    path = f"/api/payments/{made['id']}"
    assert client("POST", f"{path}/authorize", token=admin).json["status"] == "Authorized"
    too_much = client("POST", f"{path}/capture", json_body={"amount": "100.01"}, token=admin)
    assert _problem(too_much, 409)["code"] == "amount_exceeded"
    captured = client("POST", f"{path}/capture", json_body={"amount": 80}, token=admin).json
    assert (captured["status"], captured["capturedAmount"]) == ("Confirmed", "80.00")
    key = {"Idempotency-Key": "refund-1"}
    first = client(
        "POST", f"{path}/refunds", json_body={"amount": "30.00", "reason": "late"},
        token=admin, headers=key,
    )  # fmt: skip
    assert first.status == 201
    assert (first.json["amount"], first.json["kind"], first.json["status"]) == (
        "30.00",
        "refund",
        "succeeded",
    )
    again = client(
        "POST", f"{path}/refunds", json_body={"amount": "30.00", "reason": "late"},
        token=admin, headers=key,
    )  # fmt: skip
    assert again.json["id"] == first.json["id"]
    over = client("POST", f"{path}/refunds", json_body={"amount": "50.01"}, token=admin)
    assert _problem(over, 409)["code"] == "amount_exceeded"
    rest = client("POST", f"{path}/refunds", token=admin)
    assert rest.json["amount"] == "50.00"
    payment = client("GET", path, token=user).json
    assert (payment["status"], payment["refundedAmount"]) == ("Refunded", "80.00")
    ops = client("GET", f"{path}/operations", token=user).json
    assert [o["amount"] for o in ops] == ["30.00", "50.00"]
    audit = [e["action"] for e in client("GET", f"{path}/audit", token=user).json]
    assert audit == ["created", "authorized", "captured", "refunded", "refunded"]
    other = create(client, user)
    pending = client("POST", f"/api/payments/{other['id']}/refunds", token=admin)
    assert _problem(pending, 409)["code"] == "invalid_transition"
    assert client("POST", f"/api/payments/{other['id']}/refunds", token=user).status == 403


def test_a_creation_past_the_credit_limit_is_409(
    make_client: Callable[..., Client], user: str
) -> None:
    """With PAYMENTORCH_CREDIT_LIMIT, a creation past the customer's limit is refused."""
    client = make_client(credit_limit="50.00 USD")
    body = {"customerId": "ABCD-12345", "amount": "40.00"}
    assert client("POST", "/api/payments", token=user, json_body=body).status == 201
    refused = client("POST", "/api/payments", token=user, json_body=body)
    assert refused.status == 409
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json["code"] == "credit_limit_exceeded"
    assert client("GET", "/api/payments", token=user).json["items"][0]["amount"] == "40.00"


def test_a_payment_in_four_installments(client: Client, admin: str, user: str) -> None:
    """Created with a plan, confirmed, an installment paid by hand: the schedule shows it."""
    body = {"customerId": "ABCD-12345", "amount": "100.01", "plan": {"installments": 4}}
    made = client("POST", "/api/payments", token=user, json_body=body)
    assert (made.status, made.json["hasPlan"]) == (201, True)
    pid = made.json["id"]
    plan = client("GET", f"/api/payments/{pid}/plan", token=user).json
    assert (plan["status"], plan["owed"]) == ("pending", "100.01")
    assert [i["amount"] for i in plan["installments"]] == ["25.01", "25.00", "25.00", "25.00"]
    assert client("POST", f"/api/payments/{pid}/confirm", token=admin).status == 200
    path = f"/api/payments/{pid}/plan/installments/2/pay"
    assert client("POST", path, token=user).status == 403
    paid = client("POST", path, token=admin)
    assert paid.status == 200, paid.text
    assert [i["status"] for i in paid.json["installments"]] == ["paid", "paid", "scheduled",
                                                                "scheduled"]  # fmt: skip
    assert paid.json["owed"] == "50.00"
    assert client("POST", path, token=admin).status == 422  # paid already
    waive = f"/api/payments/{pid}/plan/installments/4/waive"
    assert client("POST", waive, token=admin, json_body={}).status == 422  # no reason
    waived = client("POST", waive, token=admin, json_body={"reason": "hardship"})
    assert (waived.status, waived.json["installments"][3]["status"]) == (200, "cancelled")
    assert waived.json["owed"] == "25.00"
    plain = client("POST", "/api/payments", token=user,
                   json_body={"customerId": "ABCD-12345", "amount": "5.00"}).json  # fmt: skip
    assert client("GET", f"/api/payments/{plain['id']}/plan", token=user).status == 422
    bad = {"customerId": "ABCD-12345", "amount": "5.00", "plan": {"installments": 1}}
    assert client("POST", "/api/payments", token=user, json_body=bad).status == 422


def test_a_transition_repeats_safely_with_its_key(client: Client, user: str, admin: str) -> None:
    """A confirm whose answer was lost is sent again with its ``Idempotency-Key``: the
    repeat answers as the first call did, even after the payment moved on; the key on
    another payment is a 409 conflict."""
    made, other = create(client, user), create(client, user)
    key = {"Idempotency-Key": "confirm-77"}
    path = f"/api/payments/{made['id']}"
    first = client("POST", f"{path}/confirm", token=admin, headers=key)
    assert (first.status, first.json["status"]) == (200, "Confirmed")
    refunded = client("POST", f"{path}/refunds", json_body={}, token=admin)
    assert refunded.status == 201
    again = client("POST", f"{path}/confirm", token=admin, headers=key)
    assert (again.status, again.json["status"], again.json["version"]) == (200, "Confirmed", 2)
    elsewhere = client("POST", f"/api/payments/{other['id']}/confirm", token=admin, headers=key)
    assert _problem(elsewhere, 409)["code"] == "idempotency_conflict"
    unkeyed = client("POST", f"{path}/confirm", token=admin)
    assert _problem(unkeyed, 409)["code"] == "invalid_transition"
