"""Generated documentation stays in step with the code."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import rerankit
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
