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


def test_dashboard_creates_and_confirms(server: str, tmp_path: Path) -> None:
    """Create a payment, confirm it, see the status change and the audit entry."""
    if not CHROMIUM.exists():
        if os.environ.get("PAYMENTORCH_REQUIRE_BROWSER") == "1":
            pytest.fail("PAYMENTORCH_REQUIRE_BROWSER=1 but /usr/bin/chromium is missing")
        pytest.skip("install Debian's chromium to run the browser test")
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
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
        try:
            page = browser.new_page()
            page.goto(server)
            expect(page.locator("#app")).to_be_visible()
            expect(page.locator("#identity")).to_contain_text("PaymentAdmin")

            page.fill("input[name=customerId]", "ABCD-12345")
            page.fill("input[name=amount]", "42.50")
            page.click("#create-form button[type=submit]")
            row = page.locator("#payments tr", has_text="42.50 USD")
            expect(row.locator(".status")).to_have_text("Pending")
            expect(page.locator("#message")).to_contain_text("Created payment")

            row.get_by_role("button", name="Confirm").click()
            expect(row.locator(".status")).to_have_text("Confirmed")
            expect(page.locator("#audit-entries li")).to_have_count(2)
            expect(page.locator("#audit-entries li").nth(1)).to_contain_text(
                "confirmed by dashboard"
            )

            page.fill("input[name=amount]", "10.005")
            page.click("#create-form button[type=submit]")
            expect(page.locator("#message")).to_contain_text("amount")
            page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
        finally:
            browser.close()
    assert (tmp_path / "dashboard.png").stat().st_size > 0
