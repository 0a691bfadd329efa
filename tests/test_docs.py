"""Generated documentation stays in step with the code."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import rerankit
from rerankit._install import install_hint
from rerankit._registry import BUILTIN_PROVIDERS, load_provider
from rerankit.testing import FakeServer

from .conftest import API_KEY

ROOT = Path(__file__).resolve().parent.parent


def test_provider_page_is_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_provider_docs.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_built_in_provider_loads_and_documents_itself() -> None:
    for name in BUILTIN_PROVIDERS:
        cls = load_provider(name)
        assert cls.__doc__, name
        assert cls.example_model.startswith(f"{name}/"), name
        assert name in rerankit.available_providers()
        assert cls.name == name


def test_migration_guide_examples_run(
    monkeypatch: pytest.MonkeyPatch, cohere_server: FakeServer
) -> None:
    monkeypatch.setenv("COHERE_API_KEY", API_KEY)
    monkeypatch.setenv("COHERE_API_BASE", cohere_server.url)
    page = (ROOT / "docs" / "migrating.md").read_text(encoding="utf-8")
    (diff,) = re.findall(r"```diff\n(.*?)```", page, re.S)
    imports = [line[1:] for line in diff.splitlines() if re.match(r"\+(from|import) ", line)]
    assert "from rerankit import rerank" in imports
    for line in imports:
        exec(line, {})
    for name in re.findall(r"\brerankit\.([A-Za-z_]+)", page):
        assert hasattr(rerankit, name), name
    blocks = re.findall(r"```python\n(.*?)```", page, re.S)
    assert len(blocks) == 2
    for block in blocks:
        exec(compile(block, "docs/migrating.md", "exec"), {})
    assert len(cohere_server.received) == len(blocks)


DOCS = ROOT / "docs"


def _python_block(page: str, marker: str) -> str:
    """The ```python block of ``docs/<page>`` that contains ``marker``."""
    blocks = re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), re.DOTALL)
    (block,) = [block for block in blocks if marker in block]
    return block


def test_every_install_of_an_extra_shows_the_form_that_works_today() -> None:
    """rerankit is not on PyPI yet: beside ``pip install 'rerankit[x]'`` stands the checkout
    form, ``pip install '.[x]'``, in the docs and in the package's own messages."""
    published = re.compile(r"pip install '?rerankit\[(\w+)\]'?")
    sources = [*DOCS.glob("*.md"), ROOT / "README.md", *(ROOT / "rerankit").rglob("*.py")]
    found = 0
    for path in sources:
        text = path.read_text(encoding="utf-8")
        for match in published.finditer(text):
            found += 1
            nearby = text[max(0, match.start() - 200) : match.end() + 200]
            assert f"pip install '.[{match[1]}]'" in nearby, f"{path.name}: {match[0]}"
    assert found >= 3
    assert install_hint("local") == (
        "pip install 'rerankit[local]' (or, in a checkout of rerankit's repository, "
        "pip install '.[local]')"
    )


def test_admonition_boxes_hold_only_their_own_paragraphs() -> None:
    """A line right after a ``!!!`` box's indented body, without a blank line, is swallowed
    into the box by Markdown."""
    for page in DOCS.glob("*.md"):
        lines = page.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines):
            if not line.startswith("!!! "):
                continue
            body = number + 1
            while body < len(lines) and lines[body].strip():
                assert lines[body].startswith("    "), f"{page.name}:{body + 1}: {lines[body]}"
                body += 1


def test_the_production_hooks_example_records_only_timed_events() -> None:
    recorded: list[tuple[str, object]] = []

    class Histograms:
        def histogram(self, name: str, value: float, tags: list[str]) -> None:
            if not isinstance(value, float):
                raise TypeError(f"{name} needs a number, got {value!r}")
            recorded.append((tags[1], value))

    namespace = {"rerankit": rerankit, "metrics": Histograms()}
    exec(_python_block("production.md", "def record"), namespace)
    errors: list[BaseException] = []

    def record_or_fail(event: rerankit.RerankEvent) -> None:
        try:
            namespace["record"](event)
        except BaseException as exc:  # a hook's error is only logged by rerankit
            errors.append(exc)

    with rerankit.Client(hooks=[record_or_fail]) as client:
        client.rerank("local/bm25", "reset password", ["reset your password", "invoices"])
    assert errors == []
    assert [kind for kind, _ in recorded] == ["response"]
