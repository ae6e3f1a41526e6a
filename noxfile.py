"""Development sessions: tests on every installed Python, lint, typing, docs."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["lint", "typing", "tests", "docs"]

PYTHONS = ["3.11", "3.12", "3.13"]
PYPROJECT = nox.project.load_toml("pyproject.toml")


ONE_PYTHON = "not faults and not heavy and not once"  # what the other Pythons run
ADAPTERS = "redis,rabbitmq,nats,crypto"  # the infrastructure adapters' extras
ADAPTER_TESTS = [  # they need those extras, which a bare install has not
    f"--ignore=tests/{name}.py"
    for name in ("test_contract_encrypted", "test_encryption", "test_redis_cache", "test_sinks")
]


def install(
    session: nox.Session, *groups: str, extras: str = f"postgres,sqlite,examples,{ADAPTERS}"
) -> None:
    """The project (editable, with ``extras``) and the named dependency groups."""
    requirements = [r for g in groups for r in nox.project.dependency_groups(PYPROJECT, g)]
    session.install("-e", f".[{extras}]" if extras else ".", *requirements)


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The whole test suite; PostgreSQL tests need PAYMENTORCH_TEST_POSTGRES_URL. The fault
    tests (marker ``faults``: private servers stopped, cut and locked), the long
    simulations (``heavy``) and the tests whose subject does not vary with the Python
    (``once``) run on the first Python only."""
    install(session, "tests")
    only_once = []
    if session.python != PYTHONS[0]:
        session.log(f"tests marked faults, heavy or once run on Python {PYTHONS[0]} only")
        only_once = ["-m", ONE_PYTHON]
    session.run("pytest", *only_once, *session.posargs)


BARE_CHECK = """
import asyncio, importlib.util, paymentorch as po
from paymentorch.errors import MissingDriver
from paymentorch.sync import SyncRedisCache
for module in ("sqlalchemy", "alembic", "psycopg", "psycopg_pool", "redis", "aio_pika", "nats",
               "cryptography"):
    assert importlib.util.find_spec(module) is None, f"pip install . pulled in {module}"
import paymentorch.adapters, paymentorch.sync.adapters
from paymentorch.sinks import NatsSink, RabbitMQSink
for build, extra in ((po.RedisCache, "redis"), (SyncRedisCache, "redis"), (NatsSink, "nats"),
                     (RabbitMQSink, "rabbitmq"),
                     (lambda: po.FieldEncryption({}, active="k", index_key=b""), "crypto"),
                     (lambda: paymentorch.adapters.PostgresPaymentStore, "postgres"),
                     (lambda: paymentorch.sync.adapters.SyncPostgresPaymentStore, "postgres")):
    try:
        build()
    except MissingDriver as exc:
        assert f"paymentorch[{extra}]" in str(exc), exc
    else:
        raise AssertionError(f"{build} was built without its extra")
async def main():
    async with await po.open_service("memory://") as service:
        payment = await service.create_payment("ABCD-12345", "1", actor=po.Actor.system())
        await service.confirm_payment(payment.id, actor=po.Actor.system())
    try:
        await po.open_service("sqlite:///bare.db")
    except MissingDriver as exc:
        assert "paymentorch[sqlite]" in str(exc), exc
    else:
        raise AssertionError("SQLite opened without its extra")
asyncio.run(main())
print("pip install . : memory works; SQL libraries and adapters absent; extras named")
"""


@nox.session(python=PYTHONS[0], reuse_venv=False)
def bare(session: nox.Session) -> None:
    """Installs as a user would (no editable, no dev extras): memory, then SQLite tests
    (what the other Pythons run: the first Python's tests run them all)."""
    session.install(".")
    session.run("python", "-W", "error::DeprecationWarning", "-c", BARE_CHECK)
    session.install(".[sqlite]", *nox.project.dependency_groups(PYPROJECT, "tests-bare"))
    session.run(
        "pytest", "-m", f"not postgres and {ONE_PYTHON}", "-p", "no:cacheprovider",
        "--ignore=tests/examples", "--ignore=tests/test_telemetry.py",
        "--ignore=tests/test_docs.py", "--ignore=tests/test_benchmarks.py",  # psycopg, SQLAlchemy
        *ADAPTER_TESTS, *session.posargs,
    )  # fmt: skip


@nox.session(python=PYTHONS[0])
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting; the generated blocking twin must be current."""
    install(session, "lint", extras="")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    # unasyncd's --check never reports a difference (0.10), but a forced run exits 1
    # exactly when it had to rewrite a file: the committed twin was stale.
    session.log("the blocking twin must be current (./dev generate writes it)")
    session.run("unasyncd", "--force", "--quiet")


@nox.session(python=PYTHONS[0])
def generate(session: nox.Session) -> None:
    """Write the blocking twin (src/paymentorch/sync) from the async modules."""
    install(session, "lint", extras="")
    session.run("unasyncd", "--force", success_codes=[0, 1])  # 1: files were rewritten
    session.run("unasyncd", "--force", "--quiet")  # and now nothing is left to rewrite


@nox.session(python=PYTHONS[0])
def typing(session: nox.Session) -> None:
    """mypy --strict over src/ and tests/typing/."""
    install(session, "typing")
    session.run("mypy")


@nox.session(python=PYTHONS[0])
def docs(session: nox.Session) -> None:
    """Build the documentation with warnings as errors."""
    install(session, "docs")
    session.run("sphinx-build", "-W", "--keep-going", "-b", "html", "docs", "docs/_build/html")


@nox.session(python=PYTHONS[0])
def bench(session: nox.Session) -> None:
    """The benchmarks (``-- --quick`` for a smoke run); PostgreSQL from the environment."""
    install(session, "bench", extras=f"postgres,sqlite,{ADAPTERS}")
    session.run("python", "-m", "benchmarks.run", *session.posargs)


def _option(args: list[str], name: str, default: str) -> str:
    """The value of ``--name value`` or ``--name=value`` in ``args``."""
    for index, arg in enumerate(args):
        if arg == name and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith(f"{name}="):
            return arg.partition("=")[2]
    return default


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt  # nox then stops the server it runs, and `finally` the rest


@nox.session(python=PYTHONS[0])
def example(session: nox.Session) -> None:
    """Serve the FastAPI example on SQLite at http://127.0.0.1:8000 (development mode), with
    the simulated processor beside it, calling back with signed webhooks, unless
    PAYMENTORCH_PROCESSOR_URL names one. SIGTERM or Ctrl-C stops both."""
    install(session, extras=f"postgres-binary,sqlite,examples,{ADAPTERS}")
    signal.signal(signal.SIGTERM, _interrupt)
    env, processor = {}, None
    if not os.environ.get("PAYMENTORCH_PROCESSOR_URL"):  # the simulated processor, beside it
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        host = _option(session.posargs, "--host", "127.0.0.1")
        app_port = _option(session.posargs, "--port", "8000")
        env["PAYMENTORCH_PROCESSOR_URL"] = f"http://127.0.0.1:{port}"
        env["PAYMENTORCH_WEBHOOK_SECRET"] = os.environ.get(
            "PAYMENTORCH_WEBHOOK_SECRET"
        ) or secrets.token_urlsafe(32)  # development mode: one secret for both, made here
        webhook = f"http://{host}:{app_port}/api/processors/processor-1/events"
        python = os.path.join(session.bin, "python")
        processor = subprocess.Popen(
            [python, "-m", "examples.processor", "--port", str(port), "--webhook-url", webhook],
            env={**os.environ, **env},
        )
    try:
        session.run(
            "uvicorn", "--factory", "examples.fastapi_app.main:create_app",
            "--host", "127.0.0.1", "--port", "8000",
            *session.posargs, env=env,
        )  # fmt: skip
    finally:
        if processor is not None:
            processor.terminate()
            processor.wait()
