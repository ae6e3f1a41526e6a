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


def _example(tmp_path: Path, **env: str) -> Iterator[str]:
    """The FastAPI example on a free loopback port, in development mode, on SQLite."""
    port = _free_port()
    environment = {**os.environ, "PAYMENTORCH_URL": f"sqlite:///{tmp_path}/e2e.db", **env}
    environment.pop("PAYMENTORCH_JWT_SECRET", None)
    if "PAYMENTORCH_PROCESSOR_URL" not in env:
        environment.pop("PAYMENTORCH_PROCESSOR_URL", None)
    args = ["uvicorn", "--factory", "examples.fastapi_app.main:create_app",
            "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    with _serving(args, environment, port, tmp_path / "example.log") as base:
        yield base


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """The example without a processor: payments wait for a person."""
    yield from _example(tmp_path)


@pytest.fixture
def processor(tmp_path: Path) -> Iterator[str]:
    """The simulated processor service: quick, and always saying yes."""
    port = _free_port()
    args = ["examples.processor", "--port", str(port), "--latency", "0,0.3", "--success-rate", "1"]
    with _serving(args, dict(os.environ), port, tmp_path / "processor.log") as base:
        yield base


@pytest.fixture
def server_with_processor(tmp_path: Path, processor: str) -> Iterator[str]:
    """The example with the processor service and its worker."""
    yield from _example(tmp_path, PAYMENTORCH_PROCESSOR_URL=processor)


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
    dialog, cancel with a reason, see bad input named; screenshots at two widths."""
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
            _create(page, expect)
            _search_and_open(page, expect)
            _act_through_dialogs(page, expect)
            _move_money(page, expect)
            _filter_and_refuse(page, expect)
            _pay_in_four(page, expect)
            _screenshots(page, expect, tmp_path)
        finally:
            browser.close()


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
    expect(page.locator("#confirm-dialog")).to_be_visible()
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
    page.fill("#confirm-amount", "6.00")
    page.click("#confirm-yes")
    expect(row.locator(".status")).to_have_text("Confirmed")
    expect(page.locator("#detail-fields")).to_contain_text("6.00 USD")
    row.get_by_role("button", name="Refund").click()
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
    row.get_by_role("button", name="Confirm").click()
    page.click("#confirm-yes")
    expect(page.locator("#plan-status")).to_contain_text("active")
    second = page.locator("#installments li").nth(1)
    second.get_by_role("button", name="Paid by hand").click()
    page.click("#confirm-yes")
    expect(page.locator("#installments li").nth(1)).to_contain_text("paid")
    expect(page.locator("#plan-status")).to_contain_text("owed 40.00 USD")
    page.locator("#installments li").nth(2).get_by_role("button", name="Waive").click()
    page.fill("#confirm-reason", "hardship")
    page.click("#confirm-yes")
    expect(page.locator("#installments li").nth(2)).to_contain_text("cancelled")
    expect(page.locator("#plan-status")).to_contain_text("owed 20.00 USD")


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
    webhook its charge needs attention, and a person settles it from the dashboard."""
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
            page.reload()
            expect(page.locator("#attention")).to_be_visible()
            item = page.locator("#attention-list li", has_text="charge 30.00 USD")
            expect(item).to_contain_text("needs_attention")
            item.get_by_role("button", name="It went through").click()
            page.fill("#confirm-reason", "the statement shows it")
            page.click("#confirm-yes")
            expect(page.locator("#message")).to_contain_text(op_id[-8:])
            expect(page.locator("#attention")).to_be_hidden()
            expect(page.locator("#operations")).to_contain_text("resolved by hand by dashboard")
        finally:
            browser.close()


def _post_conflicting_webhook(base: str, page: Any) -> str:
    token = page.evaluate("sessionStorage.getItem('paymentorch-token')")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    payment_id = page.locator("#detail-id").text_content()
    url = f"{base}/api/payments/{payment_id}/operations"
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - loopback
    with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310 - loopback
        (operation,) = json.load(answer)
    event = {"eventId": "late-1", "outcome": "declined", "operationId": operation["id"]}
    url = f"{base}/api/processors/processor-1/events"
    request = urllib.request.Request(url, json.dumps(event).encode(), headers)  # noqa: S310
    with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310 - loopback
        assert json.load(answer) == {"new": True}
    return str(operation["id"])
