"""Two processes moving one customer's exposure in a SQLite file at once."""

from __future__ import annotations

import asyncio
import sys
from decimal import Decimal
from pathlib import Path

import pytest

import paymentorch as po

pytestmark = pytest.mark.sqlite
ADMIN = po.Actor.system()

_WORKER = """
import asyncio, sys
import paymentorch as po

async def main(url, tag):
    async with await po.open_service(url) as service:
        for i in range(15):
            p = await service.create_payment("PROC-00001", "0.10", actor=po.Actor.system())
            if i % 3 == 0:
                await service.cancel_payment(p.id, actor=po.Actor.system(), reason="r")
            elif i % 3 == 1:
                await service.confirm_payment(p.id, actor=po.Actor.system())

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def test_two_processes_move_one_exposure_exactly(tmp_path: Path) -> None:
    """Each process creates 15 payments of 0.10 and cancels or confirms 10 of them: the
    exposure is exactly what the 10 left Pending owe, and the books verify."""
    url = f"sqlite:///{tmp_path / 'p.db'}"
    async with await po.open_service(url) as service:
        await service.create_payment("PROC-00001", "0.01", actor=ADMIN)
    workers = [
        await asyncio.create_subprocess_exec(sys.executable, "-c", _WORKER, url, str(n))
        for n in range(2)
    ]
    assert [await asyncio.wait_for(w.wait(), 60) for w in workers] == [0, 0]
    credit = po.CreditPolicy(limit=Decimal("1000.00"), currency="USD")
    async with await po.open_service(url, credit=credit) as service:
        assert await service.credit_exposure("PROC-00001") == Decimal("1.01")
        assert (await service.verify()).ok
