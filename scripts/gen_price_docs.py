"""Write the table of shipped prices into docs/costs.md from rerankit/prices.json.

Only the part between the BEGIN/END markers is generated. ``--check`` exits 1 when the
committed page is stale.

Usage: python scripts/gen_price_docs.py [--check]
"""

from __future__ import annotations

import sys
from pathlib import Path

from _generated import write_or_check  # scripts/_generated.py, beside this script

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "docs" / "costs.md"
PRICES = ROOT / "rerankit" / "prices.json"
BEGIN = "<!-- BEGIN GENERATED PRICES: scripts/gen_price_docs.py from rerankit/prices.json -->"
END = "<!-- END GENERATED PRICES -->"
sys.path.insert(0, str(ROOT))

from rerankit._cost import PriceEntry, load_prices  # noqa: E402
from rerankit._registry import BUILTIN_PROVIDERS  # noqa: E402


def _money(value: float, currency: str) -> str:
    text = f"{value:,.6f}".rstrip("0")
    whole, _, decimals = text.partition(".")
    text = f"{whole}.{decimals.ljust(2, '0')}"
    return f"${text}" if currency == "USD" else f"{text} {currency}"


def _price(entry: PriceEntry, currency: str) -> tuple[str, str]:
    """The price as people read it, and the usage figure it is multiplied by."""
    if entry.per_search_unit is not None:
        price = f"{_money(entry.per_search_unit * 1000, currency)} per 1,000 search units"
        return price, "`usage.search_units`"
    if entry.per_million_tokens is not None:
        price = f"{_money(entry.per_million_tokens, currency)} per 1M tokens"
        return price, f"`usage.{entry.tokens}_tokens`"
    assert entry.per_thousand_queries is not None
    price = f"{_money(entry.per_thousand_queries, currency)} per 1,000 queries"
    if entry.documents_per_query is None:
        return price, "queries: one per request"
    return price, f"queries: one per {entry.documents_per_query:,} documents in a request"


def generate_block() -> str:
    table = load_prices(PRICES)
    lines = [
        BEGIN,
        "",
        f"Prices in {table.currency}, as of {table.updated}.",
        "",
        "| model string | price | multiplied by | source |",
        "|---|---|---|---|",
    ]
    notes = []
    for key, entry in table.entries.items():
        price, figure = _price(entry, table.currency)
        source = f"[{entry.source.split('//', 1)[-1]}]({entry.source})" if entry.source else "—"
        lines.append(f"| `{key}` | {price} | {figure} | {source} |")
        if entry.note:
            notes.append(f"- `{key}`: {entry.note}")
    if notes:
        lines += ["", *notes]
    priced = {key.partition("/")[0] for key in table.entries}
    unpriced = sorted(set(BUILTIN_PROVIDERS) - priced)
    lines += [
        "",
        "No price is shipped for any model of "
        + ", ".join(f"`{name}`" for name in unpriced)
        + "; their cost is `None` unless you add a price.",
        "",
        END,
    ]
    return "\n".join(lines)


def render(page: str) -> str:
    start, end = page.find(BEGIN), page.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"{TARGET.relative_to(ROOT)} lacks the markers {BEGIN!r} and {END!r}")
    return page[:start] + generate_block() + page[end + len(END) :]


def main() -> int:
    return write_or_check(
        TARGET, render(TARGET.read_text()), "gen_price_docs.py", __doc__.splitlines()[0]
    )


if __name__ == "__main__":
    raise SystemExit(main())
