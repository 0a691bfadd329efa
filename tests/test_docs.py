"""Generated documentation stays in step with the code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import rerankit
from rerankit._registry import BUILTIN_PROVIDERS, load_provider

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
