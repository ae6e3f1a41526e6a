"""End to end: the FastAPI example under uvicorn, driven in headless Chromium."""

from __future__ import annotations

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


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """The FastAPI example on a free loopback port, in development mode, on SQLite."""
    port = _free_port()
    env = {**os.environ, "PAYMENTORCH_URL": f"sqlite:///{tmp_path}/e2e.db"}
    env.pop("PAYMENTORCH_JWT_SECRET", None)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "examples.fastapi_app.main:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health/live", timeout=1):  # noqa: S310
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    output = process.stdout.read().decode() if process.stdout else ""
                    pytest.fail(f"the example did not start:\n{output}")
                time.sleep(0.1)  # polling a starting server, not waiting out a race
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout:
            process.stdout.close()


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
            expect(page.locator("#identity")).to_contain_text("PaymentAdmin")
            _create(page, expect)
            _search_and_open(page, expect)
            _act_through_dialogs(page, expect)
            _move_money(page, expect)
            _filter_and_refuse(page, expect)
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
