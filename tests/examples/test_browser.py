"""End to end: the FastAPI example under uvicorn, driven in headless Chromium."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from examples.common.webhooks import SIGNATURE_HEADER, signature

pytestmark = pytest.mark.once  # journeys in one browser; the HTTP tests run everywhere

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _serving(args: list[str], env: dict[str, str], port: int, log: Path) -> Iterator[str]:
    """``python -m args...`` from the repository root, until it answers on ``port``.

    Its output goes to ``log`` (a pipe nobody reads would stall it once full) and is
    printed at teardown, which pytest shows when the test failed."""
    output = log.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", *args], cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{args[0]} did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.1)  # polling a starting server, not waiting out a race
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)
        output.close()
        print(f"--- {args[0]} ---\n{log.read_text(errors='replace')[-20_000:]}")


WEBHOOK_SECRET = "browser-test-webhook-secret"


def _example(tmp_path: Path, app: str, port: int | None = None, **env: str) -> Iterator[str]:
    """One example app on a free loopback port, in development mode, on SQLite."""
    port = port or _free_port()
    environment = {**os.environ, "PAYMENTORCH_URL": f"sqlite:///{tmp_path}/e2e.db", **env}
    environment.pop("PAYMENTORCH_JWT_SECRET", None)
    if "PAYMENTORCH_PROCESSOR_URL" not in env:
        environment.pop("PAYMENTORCH_PROCESSOR_URL", None)
    if app == "fastapi":
        args = ["uvicorn", "--factory", "examples.fastapi_app.main:create_app",
                "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    else:
        args = ["flask", "--app", "examples.flask_app.main", "run",
                "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    with _serving(args, environment, port, tmp_path / f"{app}.log") as base:
        yield base


@pytest.fixture(params=["fastapi", "flask"])
def app(request: pytest.FixtureRequest) -> str:
    """Which example app serves the dashboard."""
    return str(request.param)


@pytest.fixture
def server(tmp_path: Path, app: str) -> Iterator[str]:
    """The example without a processor: payments wait for a person."""
    yield from _example(tmp_path, app)


@pytest.fixture
def server_with_processor(tmp_path: Path, app: str) -> Iterator[str]:
    """The example with the simulated processor (quick, always saying yes), its worker,
    and the processor's signed callbacks."""
    port, app_port = _free_port(), _free_port()
    webhook = f"http://127.0.0.1:{app_port}/api/processors/processor-1/events"
    args = ["examples.processor", "--port", str(port), "--latency", "0,0.3",
            "--success-rate", "1", "--webhook-url", webhook]  # fmt: skip
    env = {**os.environ, "PAYMENTORCH_WEBHOOK_SECRET": WEBHOOK_SECRET}
    with _serving(args, env, port, tmp_path / "processor.log") as processor:
        yield from _example(tmp_path, app, app_port, PAYMENTORCH_PROCESSOR_URL=processor,
                            PAYMENTORCH_WEBHOOK_SECRET=WEBHOOK_SECRET)  # fmt: skip


SCREENSHOTS = ROOT / "docs" / "images"


def _launch(playwright: Any) -> Any:
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM),
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    )


def _require_browser() -> None:
    if not CHROMIUM.exists():
        if os.environ.get("PAYMENTORCH_REQUIRE_BROWSER") == "1":
            pytest.fail("PAYMENTORCH_REQUIRE_BROWSER=1 but /usr/bin/chromium is missing")
        pytest.skip("install Debian's chromium to run the browser test")


def test_an_operator_works_in_the_dashboard(server: str, tmp_path: Path) -> None:
    """Create (a double click makes one payment), search, open the detail, confirm in a
    dialog, cancel with a reason, see bad input named, pay in 4 and charge the plan off;
    screenshots at two widths."""
    _require_browser()
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = _launch(playwright)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(server)
            expect(page.locator("#app")).to_be_visible()
            expect(page.locator("#infrastructure")).to_have_text(
                "cache: none · events: log · not encrypted"
            )
            expect(page.locator("#identity")).to_contain_text("PaymentAdmin")
            expect(page.locator("#capture-label")).to_be_hidden()  # no processor: no "charge now"
            _every_status_in_the_filter(page, expect)
            _create(page, expect)
            _search_and_open(page, expect)
            _act_through_dialogs(page, expect)
            _move_money(page, expect)
            _filter_and_refuse(page, expect)
            _pay_in_four(page, expect)
            _charge_off(page, expect)
            _screenshots(page, expect, tmp_path)
        finally:
            browser.close()


def _every_status_in_the_filter(page: Any, expect: Any) -> None:
    options = page.locator("#status-filter option")
    expect(options).to_have_text(
        ["All", "Pending", "Authorized", "Confirmed", "Failed", "Cancelled", "Refunded"]
    )


def _dialog_shows(page: Any, expect: Any, *, amount: bool, reason: bool) -> None:
    """The dialog shows only the fields its action uses."""
    expect(page.locator("#confirm-dialog")).to_be_visible()
    for field, wanted in (("#confirm-amount", amount), ("#confirm-reason", reason)):
        if wanted:
            expect(page.locator(field)).to_be_visible()
        else:
            expect(page.locator(field)).to_be_hidden()


def _create(page: Any, expect: Any) -> None:
    # A double click on Create sends one payment, once.
    page.fill("#create-form input[name=customerId]", "ABCD-12345")
    page.fill("#create-form input[name=amount]", "42.50")
    page.dblclick("#create-form button[type=submit]")
    expect(page.locator("#message")).to_contain_text("Created payment")
    expect(page.locator("#payments tr")).to_have_count(1)
    expect(page.locator("#count-all strong")).to_have_text("1")
    expect(page.locator("#create-form input[name=amount]")).to_have_value("")
    for customer, amount in (("WXYZ-00001", "7.00"), ("WXYZ-00001", "8.00")):
        page.fill("#create-form input[name=customerId]", customer)
        page.fill("#create-form input[name=amount]", amount)
        page.click("#create-form button[type=submit]")
        expect(page.locator("#payments tr", has_text=f"{amount} USD")).to_have_count(1)
    expect(page.locator("#count-all strong")).to_have_text("3")
    expect(page.locator("#count-total strong")).to_have_text("57.50 USD")


def _search_and_open(page: Any, expect: Any) -> None:
    # Search by customer, then by id; the detail view shows the payment.
    page.fill("#search-customer", "ABCD-12345")
    page.click("#filters button[type=submit]")
    expect(page.locator("#payments tr")).to_have_count(1)
    full_id = page.locator("#payments tr td.id").first.get_attribute("title")
    assert full_id
    page.click("#clear-filters")
    expect(page.locator("#payments tr")).to_have_count(3)
    page.fill("#search-id", full_id)
    page.click("#filters button[type=submit]")
    expect(page.locator("#detail-id")).to_have_text(full_id)
    expect(page.locator("#detail-fields")).to_contain_text("ABCD-12345")
    page.fill("#search-id", "")


def _act_through_dialogs(page: Any, expect: Any) -> None:
    # Confirm through the dialog: "Keep it" changes nothing, "Yes" confirms.
    row = page.locator("#payments tr", has_text="42.50 USD")
    row.get_by_role("button", name="Confirm").click()
    _dialog_shows(page, expect, amount=False, reason=False)
    page.click("#confirm-no")
    expect(row.locator(".status")).to_have_text("Pending")
    row.get_by_role("button", name="Confirm").click()
    page.click("#confirm-yes")
    expect(row.locator(".status")).to_have_text("Confirmed")
    expect(page.locator("#audit-entries li")).to_have_count(2)
    expect(page.locator("#audit-entries li").nth(1)).to_contain_text("confirmed by dashboard")
    expect(page.locator("#count-Confirmed strong")).to_have_text("1")
    # Cancel with a reason; the detail shows it in the trail.
    other = page.locator("#payments tr", has_text="7.00 USD")
    other.get_by_role("button", name="Cancel").click()
    _dialog_shows(page, expect, amount=False, reason=True)
    page.fill("#confirm-reason", "customer changed their mind")
    page.click("#confirm-yes")
    expect(other.locator(".status")).to_have_text("Cancelled")
    expect(page.locator("#audit-entries")).to_contain_text("customer changed their mind")


def _move_money(page: Any, expect: Any) -> None:
    # Authorize the 8.00 payment, capture 6.00 of it, refund 2.50, then what is left.
    row = page.locator("#payments tr", has_text="8.00 USD")
    row.get_by_role("button", name="Authorize").click()
    page.click("#confirm-yes")
    expect(row.locator(".status")).to_have_text("Authorized")
    row.get_by_role("button", name="Capture").click()
    _dialog_shows(page, expect, amount=True, reason=False)
    page.fill("#confirm-amount", "6.00")
    page.click("#confirm-yes")
    expect(row.locator(".status")).to_have_text("Confirmed")
    expect(page.locator("#detail-fields")).to_contain_text("6.00 USD")
    row.get_by_role("button", name="Refund").click()
    _dialog_shows(page, expect, amount=True, reason=True)
    page.fill("#confirm-amount", "2.50")
    page.fill("#confirm-reason", "one item returned")
    page.click("#confirm-yes")
    expect(page.locator("#operations")).to_contain_text("refund 2.50 USD: succeeded")
    row.get_by_role("button", name="Refund").click()
    page.click("#confirm-yes")
    expect(row.locator(".status")).to_have_text("Refunded")
    expect(page.locator("#operations li")).to_have_count(2)
    expect(page.locator("#count-Refunded strong")).to_have_text("1")


def _filter_and_refuse(page: Any, expect: Any) -> None:
    # Filter by status and by a date range that holds nothing.
    page.select_option("#status-filter", "Cancelled")
    expect(page.locator("#payments tr")).to_have_count(1)
    page.select_option("#status-filter", "")
    page.fill("#from-date", "2001-01-01")
    page.fill("#to-date", "2001-01-31")
    page.click("#filters button[type=submit]")
    expect(page.locator("#payments")).to_contain_text("No payments match")
    expect(page.locator("#count-all strong")).to_have_text("0")
    page.click("#clear-filters")
    expect(page.locator("#chart rect")).not_to_have_count(0)
    # Bad input is named, and nothing is created.
    page.fill("#create-form input[name=customerId]", "ABCD-12345")
    page.fill("#create-form input[name=amount]", "10.005")
    page.click("#create-form button[type=submit]")
    expect(page.locator("#message")).to_contain_text("amount")
    expect(page.locator("#count-all strong")).to_have_text("3")


def _pay_in_four(page: Any, expect: Any) -> None:
    # Pay in 4: confirmed, the schedule shows; an installment is recorded paid by hand.
    page.fill("#create-form input[name=customerId]", "PLAN-00001")
    page.fill("#create-form input[name=amount]", "80.00")
    page.check("#create-form input[name=payIn4]")
    page.click("#create-form button[type=submit]")
    expect(page.locator("#plan")).to_be_visible()
    expect(page.locator("#installments li")).to_have_count(4)
    row = page.locator("#payments tr", has_text="80.00 USD")
    expect(row.locator(".plan-mark")).to_have_text("plan")
    expect(page.locator("#payments .plan-mark")).to_have_count(1)
    expect(page.locator("#installments button")).to_have_count(0)  # not before it is confirmed
    row.get_by_role("button", name="Confirm").click()
    page.click("#confirm-yes")
    expect(page.locator("#plan-status")).to_contain_text("active")
    second = page.locator("#installments li").nth(1)
    second.get_by_role("button", name="Paid by hand").click()
    page.click("#confirm-yes")
    expect(page.locator("#installments li").nth(1)).to_contain_text("paid")
    expect(page.locator("#plan-status")).to_contain_text("owed 40.00 USD")
    page.locator("#installments li").nth(2).get_by_role("button", name="Waive").click()
    _dialog_shows(page, expect, amount=False, reason=True)
    page.fill("#confirm-reason", "hardship")
    page.click("#confirm-yes")
    expect(page.locator("#installments li").nth(2)).to_contain_text("cancelled")
    expect(page.locator("#plan-status")).to_contain_text("owed 20.00 USD")


def _charge_off(page: Any, expect: Any) -> None:
    # Charge the plan off, with a reason: the rest is written off, and the plan offers
    # only payments by hand (recoveries) from then on.
    page.locator("#plan-status").get_by_role("button", name="Charge off").click()
    _dialog_shows(page, expect, amount=False, reason=True)
    page.fill("#confirm-reason", "120 days past due")
    page.click("#confirm-yes")
    expect(page.locator("#plan-status")).to_contain_text("charged_off")
    expect(page.locator("#message")).to_contain_text("20.00 USD in installments")
    expect(page.locator("#plan-status button")).to_have_count(0)
    expect(page.locator("#installments").get_by_role("button", name="Waive")).to_have_count(0)
    last = page.locator("#installments li").nth(3)
    expect(last.get_by_role("button", name="Paid by hand")).to_be_visible()
    expect(page.locator("#audit-entries")).to_contain_text("120 days past due")


def _screenshots(page: Any, expect: Any, folder: Path) -> None:
    page.locator("#message").evaluate("node => node.hidden = true")
    page.screenshot(path=str(folder / "dashboard-desktop.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    expect(page.locator("#payments tr").first).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways at phone width ({width}px)"
    page.screenshot(path=str(folder / "dashboard-phone.png"), full_page=True)
    if os.environ.get("PAYMENTORCH_SCREENSHOTS") == "1":  # refresh the docs' pictures
        for name in ("dashboard-desktop.png", "dashboard-phone.png"):
            (SCREENSHOTS / name).write_bytes((folder / name).read_bytes())


def test_the_processor_confirms_and_a_person_settles(server_with_processor: str) -> None:
    """Created to be charged, a payment turns Confirmed by itself; after a conflicting
    webhook its charge needs attention, shown without a reload, and a person settles it
    from the dashboard; a capture of money the processor holds says it is queued."""
    _require_browser()
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = _launch(playwright)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(server_with_processor)
            expect(page.locator("#capture-label")).to_be_visible()
            page.fill("#create-form input[name=customerId]", "ABCD-12345")
            page.fill("#create-form input[name=amount]", "30.00")
            page.click("#create-form button[type=submit]")
            row = page.locator("#payments tr", has_text="30.00 USD")
            expect(row.locator(".status")).to_have_text("Confirmed", timeout=60_000)
            expect(page.locator("#operations")).to_contain_text("charge 30.00 USD at processor-1")
            op_id = _post_conflicting_webhook(server_with_processor, page)
            expect(page.locator("#attention")).to_be_visible(timeout=10_000)
            item = page.locator("#attention-list li", has_text="charge 30.00 USD")
            expect(item).to_contain_text("needs_attention")
            item.get_by_role("button", name="It went through").click()
            page.fill("#confirm-reason", "the statement shows it")
            page.click("#confirm-yes")
            expect(page.locator("#message")).to_contain_text(op_id[-8:])
            expect(page.locator("#attention")).to_be_hidden()
            expect(page.locator("#operations")).to_contain_text("resolved by hand by dashboard")
            _capture_is_queued(page, expect)
        finally:
            browser.close()


def _capture_is_queued(page: Any, expect: Any) -> None:
    page.fill("#create-form input[name=customerId]", "ABCD-12345")
    page.fill("#create-form input[name=amount]", "12.00")
    page.select_option("#capture-method", "manual")
    page.click("#create-form button[type=submit]")
    row = page.locator("#payments tr", has_text="12.00 USD")
    expect(row.locator(".status")).to_have_text("Authorized", timeout=60_000)
    expect(row.get_by_role("button")).to_have_text(["Capture", "Fail", "Cancel"])
    row.get_by_role("button", name="Capture").click()
    page.click("#confirm-yes")
    expect(page.locator("#message")).to_contain_text("queued: the processor will answer")
    expect(row.locator(".status")).to_have_text("Confirmed", timeout=60_000)


def _post_conflicting_webhook(base: str, page: Any) -> str:
    token = page.evaluate("sessionStorage.getItem('paymentorch-token')")
    headers = {"Authorization": f"Bearer {token}"}
    payment_id = page.locator("#detail-id").text_content()
    url = f"{base}/api/payments/{payment_id}/operations"
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - loopback
    with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310 - loopback
        (operation,) = json.load(answer)
    event = json.dumps({"eventId": "late-1", "outcome": "declined", "operationId": operation["id"]})
    signed = {"Content-Type": "application/json",
              SIGNATURE_HEADER: signature(WEBHOOK_SECRET, event.encode())}  # fmt: skip
    url = f"{base}/api/processors/processor-1/events"
    request = urllib.request.Request(url, event.encode(), signed)  # noqa: S310 - loopback
    with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310 - loopback
        assert json.load(answer) == {"new": True}
    return str(operation["id"])


def _api(base: str, token: str, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    request = urllib.request.Request(f"{base}{path}", data, headers, method=method)  # noqa: S310
    with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310 - loopback
        return json.load(answer)


def test_the_dashboard_follows_changes_made_elsewhere(server: str) -> None:
    """A payment created and confirmed by another client shows up, then turns Confirmed
    in the list and in the open detail, without a reload; its Confirm button goes."""
    _require_browser()
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = _launch(playwright)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(server)
            expect(page.locator("#app")).to_be_visible()
            expect(page.locator("#payments")).to_contain_text("No payments match")
            token = page.evaluate("sessionStorage.getItem('paymentorch-token')")
            made = _api(server, token, "POST", "/api/payments",
                        {"customerId": "ABCD-12345", "amount": "64.00"})  # fmt: skip
            row = page.locator("#payments tr", has_text="64.00 USD")
            expect(row.locator(".status")).to_have_text("Pending", timeout=10_000)
            expect(page.locator("#count-Pending strong")).to_have_text("1")
            row.click()
            expect(page.locator("#detail-fields")).to_contain_text("Pending")
            _api(server, token, "POST", f"/api/payments/{made['id']}/confirm")
            expect(row.locator(".status")).to_have_text("Confirmed", timeout=10_000)
            expect(page.locator("#detail-fields")).to_contain_text("Confirmed", timeout=10_000)
            expect(page.locator("#audit-entries li")).to_have_count(2)
            expect(page.locator("#count-Confirmed strong")).to_have_text("1")
            expect(row.get_by_role("button")).to_have_text(["Refund"])
        finally:
            browser.close()


def test_the_books_in_the_dashboard(server: str) -> None:
    """A payment's detail shows its journal, a row per line with its debit or credit, and
    follows a refund made elsewhere; an admin's Books view shows the trial balance,
    balanced, and runs the integrity check; a customer sees its own journal and no Books;
    nothing breaks the page's policy."""
    _require_browser()
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = _launch(playwright)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.add_init_script(WATCH_POLICY)
            troubles: list[str] = []
            page.on("pageerror", lambda error: troubles.append(f"page error: {error}"))
            page.goto(server)
            expect(page.locator("#app")).to_be_visible()
            token = page.evaluate("sessionStorage.getItem('paymentorch-token')")
            made = _api(server, token, "POST", "/api/payments",
                        {"customerId": "ABCD-12345", "amount": "100.00",
                         "plan": {"installments": 4}})  # fmt: skip
            _api(server, token, "POST", f"/api/payments/{made['id']}/confirm")
            row = page.locator("#payments tr", has_text="100.00 USD")
            expect(row.locator(".status")).to_have_text("Confirmed", timeout=10_000)
            row.click()
            _journal_shows(page, expect, server, token, made["id"])
            _books_show(page, expect)
            page.wait_for_load_state("networkidle")
            troubles += page.evaluate("window.__violations")
            assert troubles == []
            _a_customer_sees_its_journal(browser, expect, server, row_text="100.00 USD")
        finally:
            browser.close()


def _journal_shows(page: Any, expect: Any, server: str, token: str, payment_id: str) -> None:
    lines = page.locator("#journal-lines tr")
    expect(lines).to_have_count(3)
    expect(page.locator("#journal-lines tr.entry-start td").first).to_have_text("capture")

    def sides(account: str) -> Any:
        return page.locator("#journal-lines tr", has_text=account).locator("td.amount")

    expect(sides("receivable ABCD-12345")).to_have_text(["75.00 USD", ""])
    expect(sides("clearing manual")).to_have_text(["25.00 USD", ""])
    expect(sides("payable default")).to_have_text(["", "100.00 USD"])
    _api(server, token, "POST", f"/api/payments/{payment_id}/refunds", {"amount": "10.00"})
    expect(lines).to_have_count(5, timeout=10_000)  # the poll brings the refund's entry
    firsts = page.locator("#journal-lines tr.entry-start td:first-child")
    expect(firsts).to_have_text(["capture", "refund"])
    expect(lines.nth(3).locator("td.amount")).to_have_text(["", "10.00 USD"])  # receivable


def _books_show(page: Any, expect: Any) -> None:
    expect(page.locator("#books")).to_be_hidden()
    page.click("#books-open")
    expect(page.locator("#books-state")).to_contain_text("balanced")
    rows = page.locator("#balances tr")
    expect(rows).to_have_count(3)
    expect(rows.locator("td:first-child")).to_have_text(["clearing", "payable", "receivable"])
    expect(page.locator("#balances tr[data-kind=receivable] td.amount")).to_have_text(
        ["65.00 USD", ""]
    )
    expect(page.locator("#balances tr[data-kind=payable] td.amount")).to_have_text(
        ["", "90.00 USD"]
    )
    page.click("#verify")
    expect(page.locator("#integrity-state")).to_have_text("No problems: 1 payment(s) checked.")
    page.click("#books-close")
    expect(page.locator("#books")).to_be_hidden()


def _a_customer_sees_its_journal(browser: Any, expect: Any, server: str, row_text: str) -> None:
    query = "/dev/token?role=PaymentUser&customer=ABCD-12345"
    with urllib.request.urlopen(f"{server}{query}", timeout=5) as answer:  # noqa: S310
        token = json.load(answer)["token"]
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.add_init_script(f"sessionStorage.setItem('paymentorch-token', {json.dumps(token)})")
    page.goto(server)
    expect(page.locator("#identity")).to_contain_text("for ABCD-12345")
    expect(page.locator("#books-open")).to_be_hidden()
    page.locator("#payments tr", has_text=row_text).click()
    expect(page.locator("#journal-lines tr")).to_have_count(5)
    page.close()


WATCH_POLICY = """
window.__violations = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__violations.push(`${e.violatedDirective} ${e.blockedURI}`));
"""


@pytest.mark.parametrize(
    ("path", "rendered"),
    [
        ("/docs", ".swagger-ui .info .title"),
        ("/redoc", "redoc h1"),
        ("/", "#count-all strong"),
    ],
)
def test_the_pages_live_within_their_policy(server: str, path: str, rendered: str) -> None:
    """Swagger UI, ReDoc and the dashboard render with no page error, no failed script
    and nothing the Content-Security-Policy blocked."""
    _require_browser()
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = _launch(playwright)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.add_init_script(WATCH_POLICY)
            troubles: list[str] = []
            page.on("pageerror", lambda error: troubles.append(f"page error: {error}"))
            page.on("console", lambda message: troubles.append(f"console: {message.text}")
                    if "Content Security Policy" in message.text else None)  # fmt: skip
            page.on("requestfailed", lambda r: troubles.append(f"failed: {r.url}"))
            page.goto(f"{server}{path}")
            expect(page.locator(rendered).first).to_be_visible(timeout=15_000)
            if path != "/":
                expect(page.locator(rendered).first).to_contain_text("PaymentOrchestrator Lite")
            page.wait_for_load_state("networkidle")
            troubles += page.evaluate("window.__violations")
            assert troubles == []
        finally:
            browser.close()


@pytest.fixture
def late_book(tmp_path: Path, app: str) -> Iterator[tuple[str, list[str]]]:
    """The example without a processor, on a book of plans bought 40 and 20 days ago and
    today, and one whose collection stopped after a hard decline 6 days ago."""
    from tests.examples.test_collections import seed, stopped_plan

    url = f"sqlite:///{tmp_path}/e2e.db"
    stopped = stopped_plan(url)  # first: its worker collects every plan due it finds
    made = seed(url, [("ABCD-12345", "100.00", 40), ("WXYZ-67890", "60.00", 20),
                      ("ABCD-12345", "40.00", 0)])  # fmt: skip
    made.append(stopped)
    for base in _example(tmp_path, app):
        yield base, made


def _picture(page: Any, selector: str, path: Path) -> None:
    """A screenshot of one part of the page; the docs' copy too with PAYMENTORCH_SCREENSHOTS=1."""
    page.locator(selector).screenshot(path=str(path))
    if os.environ.get("PAYMENTORCH_SCREENSHOTS") == "1":
        (SCREENSHOTS / path.name).write_bytes(path.read_bytes())


def test_the_collections_view(late_book: tuple[str, list[str]], tmp_path: Path) -> None:
    """An admin opens Collections: the aging buckets as a chart and tiles, the delinquent
    plans with days past due, last decline and next attempt; resumes a stopped plan's
    collection and charges a plan off through a reason dialog; nothing breaks the
    page's policy."""
    _require_browser()
    from playwright.sync_api import expect, sync_playwright

    server, (oldest, recent, _current, stopped) = late_book
    with sync_playwright() as playwright:
        browser = _launch(playwright)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.add_init_script(WATCH_POLICY)
            troubles: list[str] = []
            page.on("pageerror", lambda error: troubles.append(f"page error: {error}"))
            page.goto(server)
            expect(page.locator("#collections")).to_be_hidden()
            page.click("#collections-open")
            tiles = page.locator("#aging-buckets .tile strong")
            expect(tiles).to_have_text(["1", "3", "0", "0", "0"])
            expect(page.locator("#aging-buckets .tile[data-bucket='1-29']")).to_contain_text(
                "195.00 USD"
            )
            expect(page.locator("#aging-chart rect.aging-bar")).to_have_count(5)
            rows = page.locator("#delinquent tr")
            expect(rows).to_have_count(3)
            expect(rows.locator("td.days")).to_have_text(["26", "6", "6"])
            late = page.locator(f"#delinquent tr[data-payment-id='{stopped}']")
            expect(late.locator("td.decline")).to_have_text("card_stolen")
            expect(late.locator("td.next-attempt")).to_have_text("—")
            expect(late).to_contain_text("collection stopped")
            _picture(page, "#collections", tmp_path / "dashboard-collections.png")
            late.get_by_role("button", name="Resume collection").click()
            _dialog_shows(page, expect, amount=False, reason=False)
            page.click("#confirm-yes")
            expect(page.locator("#message")).to_contain_text("resumed")
            expect(late).not_to_contain_text("collection stopped")
            first = page.locator(f"#delinquent tr[data-payment-id='{oldest}']")
            first.get_by_role("button", name="Charge off").click()
            _dialog_shows(page, expect, amount=False, reason=True)
            page.fill("#confirm-reason", "no answer for weeks")
            page.click("#confirm-yes")
            expect(page.locator("#message")).to_contain_text("75.00 USD in installments")
            expect(rows).to_have_count(2)
            expect(tiles).to_have_text(["1", "2", "0", "0", "0"])
            expect(page.locator(f"#delinquent tr[data-payment-id='{recent}']")).to_be_visible()
            page.wait_for_load_state("networkidle")
            troubles += page.evaluate("window.__violations")
            assert troubles == []
        finally:
            browser.close()
