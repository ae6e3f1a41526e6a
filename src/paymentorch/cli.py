"""The ``paymentorch`` console command."""

from __future__ import annotations

import argparse
import sys

from paymentorch._migrate import migrate_sync
from paymentorch.adapters._require import MissingDriver
from paymentorch.domain import PaymentError


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = argparse.ArgumentParser(prog="paymentorch", description="paymentorch tools")
    commands = parser.add_subparsers(dest="command", required=True)
    migrate = commands.add_parser("migrate", help="create or upgrade the schema at URL")
    migrate.add_argument("url", help="postgresql://user@host:5432/db or sqlite:///path.db")
    migrate.add_argument("--sql", action="store_true", help="print the SQL instead of running it")
    migrate.add_argument("--revision", default="head", help="target revision (default: head)")
    args = parser.parse_args(argv)
    try:
        output = migrate_sync(args.url, revision=args.revision, sql=args.sql)
    except (PaymentError, MissingDriver) as exc:
        print(f"paymentorch: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a driver's error: show it plainly, without a traceback
        print(f"paymentorch: migration failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if output is not None:
        sys.stdout.write(output)
    else:
        print(f"paymentorch: schema at {args.revision}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
