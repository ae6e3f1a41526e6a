"""The code in the README and the documentation runs as written."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import io
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def _blocks(page: Path) -> list[str]:
    return BLOCK.findall(page.read_text())


@pytest.mark.parametrize(
    "page", [p for p in PAGES if _blocks(p)], ids=lambda p: str(p.relative_to(ROOT))
)
def test_page_runs(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ```python block of the page runs, in order, in one namespace."""
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": "__docs__"}
    output = io.StringIO()

    # Top-level await runs only in an asyncio REPL: a page may use it only if it says so.
    # Other pages hold scripts, which call asyncio.run themselves.
    repl = "python -m asyncio" in page.read_text()

    async def run_all() -> None:
        for source in _blocks(page):
            code = compile(source, str(page), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
            result = eval(code, namespace)  # noqa: S307 - our own documentation
            if asyncio.iscoroutine(result):
                await result

    runs = 2 if page.name == "README.md" else 1  # the quickstart's file persists: run twice
    with contextlib.redirect_stdout(output):
        if repl:
            asyncio.run(run_all())
        else:
            for _ in range(runs):
                for source in _blocks(page):
                    exec(compile(source, str(page), "exec"), dict(namespace))  # noqa: S102
    printed = output.getvalue().splitlines()
    if page.name == "README.md":
        expected = "Confirmed 125.50 ['created', 'confirmed']"
        assert printed == [expected, expected]
    if page.name == "plans.md":
        assert printed == ["pending None", "['paid', 'paid', 'cancelled', 'cancelled'] 40.00"]
    if page.name == "collections.md":
        shown = [block.split("```")[0] for block in page.read_text().split("```text\n")[1:]]
        assert printed == "".join(shown).splitlines()
    if page.name == "books.md":
        assert printed == [
            "capture | receivable ABCD-12345 75.00, clearing manual 25.00, payable default -100.00",
            "installment | receivable ABCD-12345 -25.00, clearing manual 25.00",
            "refund | receivable ABCD-12345 -10.00, payable default 10.00",
            "customer owes 40.00",
            "{'clearing USD': '50.00', 'payable USD': '-90.00', 'receivable USD': '40.00'}",
            "True 1",
            "write_off | receivable ABCD-12345 -75.00, writeoffs - 75.00",
            "recovery | clearing manual 25.00, writeoffs - -25.00",
            "written off 50.00",
            "charged_off True",
        ]
    if page.name == "money.md":
        assert printed == ["Refunded 100.00 80.00 80.00 [Decimal('30.00'), Decimal('50.00')]"]
