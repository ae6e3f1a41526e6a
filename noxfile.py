"""Development sessions: tests on every installed Python, lint, typing, docs."""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["lint", "typing", "tests", "docs"]

PYTHONS = ["3.11", "3.12", "3.13"]
PYPROJECT = nox.project.load_toml("pyproject.toml")


def install(session: nox.Session, *groups: str, extras: str = "postgres,sqlite,examples") -> None:
    """The project (editable, with ``extras``) and the named dependency groups."""
    requirements = [r for g in groups for r in nox.project.dependency_groups(PYPROJECT, g)]
    session.install("-e", f".[{extras}]" if extras else ".", *requirements)


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The whole test suite; PostgreSQL tests need PAYMENTORCH_TEST_POSTGRES_URL."""
    install(session, "tests")
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHONS[0])
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    install(session, "lint", extras="")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


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
    install(session, "bench", extras="postgres,sqlite")
    session.run("python", "-m", "benchmarks.run", *session.posargs)


@nox.session(python=PYTHONS[0])
def example(session: nox.Session) -> None:
    """Serve the FastAPI example on SQLite at http://127.0.0.1:8000 (development mode)."""
    install(session, extras="sqlite,examples")
    session.run(
        "uvicorn", "examples.fastapi_app.main:app", "--host", "127.0.0.1", "--port", "8000",
        *session.posargs,
    )  # fmt: skip
