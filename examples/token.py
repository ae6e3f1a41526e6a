"""Print a bearer token for the example APIs::

python -m examples.token --role PaymentAdmin
python -m examples.token --role PaymentUser --customer ABCD-12345
"""

from __future__ import annotations

import argparse
import os
import sys

import paymentorch as po
from examples.common.auth import make_token


def main(argv: list[str] | None = None) -> int:
    """Print a token signed with ``PAYMENTORCH_JWT_SECRET``."""
    parser = argparse.ArgumentParser(
        prog="python -m examples.token", formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument(
        "--role",
        action="append",
        choices=["PaymentAdmin", "PaymentUser"],
        help="a role (repeat for several; PaymentUser when left out)",
    )
    parser.add_argument(
        "--customer", help="the customer a PaymentUser acts for (required for PaymentUser)"
    )
    parser.add_argument("--sub", default="cli-user", help="the actor id")
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
    roles = args.role or ["PaymentUser"]
    if "PaymentAdmin" not in roles:  # a PaymentUser acts for one customer
        _, errors = po.ValidationPolicy().check_field("customer_id", args.customer or "")
        if errors:
            print(f"--customer {errors[0].message} (a PaymentUser token names its customer)",
                  file=sys.stderr)  # fmt: skip
            return 2
    print(make_token(secret, args.sub, roles, customer=args.customer, ttl=args.ttl))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
