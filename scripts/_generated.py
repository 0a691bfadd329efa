"""What the generator scripts share: write a generated file, or ``--check`` that it is current."""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def write_or_check(target: Path, new: str, script: str, description: str) -> int:
    """Write ``new`` to ``target``; with ``--check``, exit 1 (and show the diff) if it differs."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--check", action="store_true", help="fail if the committed file is stale")
    check = parser.parse_args().check
    name = target.relative_to(ROOT)
    old = target.read_text() if target.exists() else ""
    if not check:
        target.write_text(new)
        print(f"wrote {name}")
        return 0
    if new == old:
        print(f"{name} is up to date")
        return 0
    diff = difflib.unified_diff(
        old.splitlines(), new.splitlines(), "committed", "generated", lineterm=""
    )
    print("\n".join(diff))
    print(f"{name} is stale: run python scripts/{script}", file=sys.stderr)
    return 1
