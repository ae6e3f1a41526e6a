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
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT if "python -m asyncio" in page.read_text() else 0

    async def run_all() -> None:
        for source in _blocks(page):
            code = compile(source, str(page), "exec", flags=flags)
            result = eval(code, namespace)  # noqa: S307 - our own documentation
            if asyncio.iscoroutine(result):
                await result

    with contextlib.redirect_stdout(output):
        if page.name == "README.md":
            # The quickstart is a script: it calls asyncio.run itself. Run it twice, as a
            # reader might: its SQLite file persists between the runs.
            for _ in range(2):
                for source in _blocks(page):
                    exec(compile(source, str(page), "exec"), dict(namespace))  # noqa: S102
        else:
            asyncio.run(run_all())
    if page.name == "README.md":
        expected = "Confirmed 125.50 ['created', 'confirmed']"
        assert output.getvalue().splitlines() == [expected, expected]
