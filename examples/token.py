"""Print a bearer token for the example APIs: ``python -m examples.token --role PaymentAdmin``."""

from __future__ import annotations

import argparse
import os
import sys

from examples.common.auth import make_token


def main(argv: list[str] | None = None) -> int:
    """Print a token signed with ``PAYMENTORCH_JWT_SECRET``."""
    parser = argparse.ArgumentParser(prog="python -m examples.token")
    parser.add_argument("--role", action="append", choices=["PaymentAdmin", "PaymentUser"])
    parser.add_argument("--sub", default="cli-user", help="the actor id (default: cli-user)")
    parser.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds")
    args = parser.parse_args(argv)
    secret = os.environ.get("PAYMENTORCH_JWT_SECRET")
    if not secret:
        print(
            "set PAYMENTORCH_JWT_SECRET to the app's secret; an app started without one "
            "(development mode) hands out tokens at GET /dev/token",
            file=sys.stderr,
        )
        return 2
    print(make_token(secret, args.sub, args.role or ["PaymentUser"], ttl=args.ttl))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
