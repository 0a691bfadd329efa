"""Write the table of known local models into docs/local.md from rerankit's model table.

Only the part between the BEGIN/END markers is generated. ``--check`` exits 1 when the
committed page is stale.

Usage: python scripts/gen_model_docs.py [--check]
"""

from __future__ import annotations

import sys
from pathlib import Path

from _generated import write_or_check  # scripts/_generated.py, beside this script

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "docs" / "local.md"
BEGIN = "<!-- BEGIN GENERATED MODELS: scripts/gen_model_docs.py -->"
END = "<!-- END GENERATED MODELS -->"
sys.path.insert(0, str(ROOT))

from rerankit.providers._known_models import KNOWN_MODELS, KnownModel  # noqa: E402


def _row(model: KnownModel) -> str:
    revision = f"`{model.revision[:12]}`" if model.revision else "default branch"
    notes = f"unverified: {model.unverified}" if model.unverified else ""
    return (
        f"| `local/{model.kind}:{model.name}` | [`{model.repo_id}`]({model.source}) | {revision} "
        f"| `{model.onnx_file}` | {model.languages} | {model.max_length} | {model.size_mb:,} MB "
        f"| {model.licence} | {notes} |"
    )


def table() -> str:
    lines = [
        "| model string | Hub repo (source of the listing) | revision | ONNX file | languages "
        "| max length | size | licence | notes |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *(_row(model) for model in KNOWN_MODELS),
    ]
    return "\n".join(lines)


def main() -> int:
    page = TARGET.read_text()
    start, end = page.index(BEGIN) + len(BEGIN), page.index(END)
    new = page[:start] + "\n" + table() + "\n" + page[end:]
    return write_or_check(TARGET, new, "gen_model_docs.py", __doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
