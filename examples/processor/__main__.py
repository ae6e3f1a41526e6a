"""Run the simulated processor: ``python -m examples.processor --port 8090``.

``PUT /v1/switches {"refuseSeconds": 10}`` closes the listening socket for ten seconds,
so clients get "connection refused", as from a processor that is down. With
``--webhook-url`` (and ``PAYMENTORCH_WEBHOOK_SECRET``) it calls the service back,
signed, with each final answer.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time

import uvicorn
from fastapi import FastAPI

from examples.processor.app import Webhooks, create_app
from paymentorch.testing import SimulatedProcessor


async def serve(app: FastAPI, host: str, port: int, stop: asyncio.Event | None = None) -> None:
    """Serve ``app`` until ``stop`` is set (or a signal), closing the socket while its
    switches say refuse."""
    stop = stop or asyncio.Event()
    while not stop.is_set():
        config = uvicorn.Config(app, host=host, port=port, log_level="warning",
                                lifespan="off", timeout_graceful_shutdown=1)  # fmt: skip
        server = uvicorn.Server(config)
        running = asyncio.create_task(server.serve())
        refusing = False
        while not running.done():
            await asyncio.wait({running}, timeout=0.05)
            refusing = refusing or app.state.refuse_until > time.monotonic()
            if refusing or stop.is_set():
                server.should_exit = True
        await running
        if not refusing:
            return  # stopped for good, not refusing for a while
        while app.state.refuse_until > time.monotonic() and not stop.is_set():
            with contextlib.suppress(TimeoutError):  # the switch may be turned back early
                await asyncio.wait_for(stop.wait(), 0.05)


def decline_codes(text: str) -> dict[str, float]:
    """``code=weight,...`` as a mapping (argparse reports a ``ValueError`` as a usage error)."""
    found: dict[str, float] = {}
    for part in text.split(","):
        code, _, weight = part.partition("=")
        try:
            found[code.strip()] = float(weight or 1)
        except ValueError:
            found[""] = 0  # refused below
    if "" in found or any(w < 0 for w in found.values()) or not any(found.values()):
        raise ValueError(f"not code=weight,...: {text}")
    return found


def main() -> int:
    """Parse the command line and serve."""
    parser = argparse.ArgumentParser(
        prog="python -m examples.processor", formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    parser.add_argument("--port", type=int, default=8090, help="the port to listen on")
    parser.add_argument("--success-rate", type=float, default=0.95, help="share of successes")
    parser.add_argument("--timeout-rate", type=float, default=0.0, help="share of timeouts")
    parser.add_argument("--latency", default="1,5", help="low,high seconds")
    parser.add_argument("--seed", type=int, default=None, help="for repeatable answers")
    parser.add_argument(
        "--decline-codes",
        type=decline_codes,
        default=None,
        metavar="CODE=WEIGHT,...",
        help="the codes declines carry, weighed, such as insufficient_funds=3,card_stolen=1"
        " (a quarter of declines hard, under the default collection policy); every"
        " decline says 'declined' without it",
    )
    parser.add_argument(
        "--webhook-url",
        help="where to post signed callbacks, such as"
        " http://127.0.0.1:8000/api/processors/processor-1/events"
        " (the secret: PAYMENTORCH_WEBHOOK_SECRET)",
    )
    args = parser.parse_args()
    webhooks = None
    if args.webhook_url:
        secret = os.environ.get("PAYMENTORCH_WEBHOOK_SECRET")
        if not secret:
            print("--webhook-url needs PAYMENTORCH_WEBHOOK_SECRET, the secret the service "
                  "checks callbacks with", file=sys.stderr)  # fmt: skip
            return 2
        webhooks = Webhooks(args.webhook_url, secret)
    low, high = (float(x) for x in args.latency.split(","))
    processor = SimulatedProcessor(
        args.success_rate,
        (low, high),
        args.timeout_rate,
        seed=args.seed,
        decline_codes=args.decline_codes,
    )
    print(f"simulated processor on http://{args.host}:{args.port}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(create_app(processor, webhooks), args.host, args.port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
