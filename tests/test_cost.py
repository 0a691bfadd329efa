"""Cost from usage and a price table: the shipped table, each kind of price, overrides, files."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

import rerankit
from rerankit._cost import (
    PriceEntry,
    PriceTable,
    default_prices,
    load_prices,
    resolve_prices,
)
from rerankit._registry import BUILTIN_PROVIDERS, load_provider
from rerankit._types import Usage

ROOT = Path(__file__).resolve().parent.parent
PRICES_JSON = ROOT / "rerankit" / "prices.json"


def table(prices: dict[str, Any]) -> PriceTable:
    return PriceTable(prices)


# --- the shipped table -------------------------------------------------------------------------


def test_every_shipped_price_parses_and_names_its_source() -> None:
    raw = json.loads(PRICES_JSON.read_text())
    assert raw["version"] == 1
    assert raw["currency"] == "USD"
    assert raw["updated"]
    shipped = default_prices()
    assert set(shipped) == set(raw["prices"])
    assert len(shipped) > 0
    for key, entry in shipped.entries.items():
        assert (entry.source or "").startswith("https://"), key
        price = getattr(entry, entry.kind)
        assert math.isfinite(price), key
        assert price > 0, key


def test_shipped_keys_name_built_in_providers_and_their_documented_models() -> None:
    for key in default_prices():
        provider, _, model = key.partition("/")
        assert provider in BUILTIN_PROVIDERS, key
        if model != "*":
            documented = load_provider(provider)().model_table()
            assert not documented or model in documented, key


def test_shipped_table_is_package_data_read_through_importlib_resources() -> None:
    from importlib.resources import files

    data = files("rerankit").joinpath("prices.json").read_bytes()
    assert json.loads(data)["prices"].keys() == set(default_prices())
    assert PriceTable.default() is default_prices()  # read once, then cached


def test_shipped_prices_give_costs() -> None:
    prices = default_prices()
    assert prices.cost("cohere", "rerank-v3.5", Usage(search_units=3)) == pytest.approx(0.006)
    assert prices.cost("voyage", "rerank-2.5", Usage(total_tokens=2_000_000)) == pytest.approx(0.1)
    assert prices.cost("zeroentropy", "zerank-2", Usage(total_tokens=1_000_000)) == (
        pytest.approx(0.025)
    )


@pytest.mark.slow
def test_prices_are_found_in_an_installed_wheel(tmp_path: Path) -> None:
    """Build the wheel, unpack it as an install would, and read the prices from there."""
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=120,
    )
    (wheel,) = tmp_path.glob("rerankit-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        assert "rerankit/prices.json" in archive.namelist()
        archive.extractall(site)
    code = (
        "import rerankit, rerankit._cost as c; "
        "print(rerankit.__file__); print(len(c.default_prices()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={"PYTHONPATH": str(site), "PATH": ""},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    where, count = out.stdout.split()
    assert Path(where).is_relative_to(site)
    assert int(count) == len(default_prices())


def test_price_page_is_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_price_docs.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_import_rerankit_does_not_read_the_price_table() -> None:
    code = (
        "import sys, rerankit, rerankit._cost as c; "
        "print(c._default_table is None); c.default_prices(); print(c._default_table is None)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == ["True", "False"]


# --- each kind of price ------------------------------------------------------------------------


def test_per_search_unit() -> None:
    prices = table({"cohere/rerank-v3.5": {"per_search_unit": 0.002}})
    assert prices.cost("cohere", "rerank-v3.5", Usage(search_units=5)) == pytest.approx(0.01)
    assert prices.cost("cohere", "rerank-v3.5", Usage(search_units=0)) == 0.0
    # Tokens alone do not price a search-unit model.
    assert prices.cost("cohere", "rerank-v3.5", Usage(input_tokens=10, total_tokens=10)) is None


def test_per_million_tokens_uses_the_entry_s_token_count() -> None:
    prices = table(
        {
            "voyage/rerank-2.5": {"per_million_tokens": 0.05, "tokens": "total"},
            "deepinfra/Qwen/Qwen3-Reranker-8B": {"per_million_tokens": 0.05, "tokens": "input"},
            "zeroentropy/*": {"per_million_tokens": 0.025},  # tokens defaults to "total"
        }
    )
    both = Usage(input_tokens=100_000, total_tokens=300_000)
    assert prices.cost("voyage", "rerank-2.5", both) == pytest.approx(0.015)
    assert prices.cost("deepinfra", "Qwen/Qwen3-Reranker-8B", both) == pytest.approx(0.005)
    assert prices.cost("zeroentropy", "zerank-2", both) == pytest.approx(0.0075)
    # The figure the entry bills on is missing: unknown, even if another figure is known.
    assert prices.cost("voyage", "rerank-2.5", Usage(input_tokens=100)) is None
    assert prices.cost("deepinfra", "Qwen/Qwen3-Reranker-8B", Usage(total_tokens=100)) is None


def test_per_thousand_queries_counts_one_query_per_request() -> None:
    prices = table({"vertex_ai/semantic-ranker-default@latest": {"per_thousand_queries": 1.0}})
    model = "semantic-ranker-default@latest"
    assert prices.cost("vertex_ai", model, Usage()) == pytest.approx(0.001)
    assert prices.cost("vertex_ai", model, Usage(), documents=500) == pytest.approx(0.001)
    # A call split into three requests is three queries.
    assert prices.cost("vertex_ai", model, Usage(), documents=[200, 200, 100]) == pytest.approx(
        0.003
    )


def test_documents_per_query_counts_each_started_block_of_documents() -> None:
    prices = table(
        {"bedrock/amazon.rerank-v1:0": {"per_thousand_queries": 1.0, "documents_per_query": 100}}
    )
    model = "amazon.rerank-v1:0"
    assert prices.cost("bedrock", model, Usage(), documents=1) == pytest.approx(0.001)
    assert prices.cost("bedrock", model, Usage(), documents=100) == pytest.approx(0.001)
    assert prices.cost("bedrock", model, Usage(), documents=350) == pytest.approx(0.004)
    # Per request: 150 -> 2 queries, 150 -> 2 queries (not ceil(300 / 100) = 3).
    assert prices.cost("bedrock", model, Usage(), documents=[150, 150]) == pytest.approx(0.004)
    # The price depends on the number of documents, which is unknown.
    assert prices.cost("bedrock", model, Usage(search_units=1)) is None


def test_bad_document_counts_are_rejected() -> None:
    entry = PriceEntry(per_thousand_queries=1.0, documents_per_query=100)
    with pytest.raises(ValueError, match="documents"):
        entry.cost(Usage(), documents=-1)
    with pytest.raises(ValueError, match="documents"):
        entry.cost(Usage(), documents=[True])


def test_unknown_model_costs_none_never_zero() -> None:
    prices = table({"cohere/rerank-v3.5": {"per_search_unit": 0.002}})
    assert prices.cost("cohere", "rerank-english-v3.0", Usage(search_units=1)) is None
    assert prices.cost("jina_ai", "jina-reranker-v3", Usage(total_tokens=10)) is None
    assert default_prices().cost("local", "bm25", Usage()) is None


def test_lookup_prefers_the_model_then_the_provider_wildcard() -> None:
    prices = table(
        {
            "zeroentropy/*": {"per_million_tokens": 0.025},
            "zeroentropy/zerank-1-small": {"per_million_tokens": 0.01},
        }
    )
    usage = Usage(total_tokens=1_000_000)
    assert prices.cost("zeroentropy", "zerank-1-small", usage) == pytest.approx(0.01)
    assert prices.cost("zeroentropy", "zerank-2", usage) == pytest.approx(0.025)
    assert prices.lookup("voyage", "zerank-2") is None


def test_a_bedrock_arn_finds_the_price_of_its_model_id() -> None:
    prices = table({"bedrock/cohere.rerank-v3-5:0": {"per_thousand_queries": 2.0}})
    arn = "arn:aws:bedrock:us-west-2::foundation-model/cohere.rerank-v3-5:0"
    assert prices.cost("bedrock", arn, Usage(), documents=10) == pytest.approx(0.002)


# --- overrides -----------------------------------------------------------------------------------


def test_overrides_win_and_return_a_new_table() -> None:
    shipped = default_prices()
    before = shipped.cost("cohere", "rerank-v3.5", Usage(search_units=1))
    custom = shipped.with_overrides(
        {
            "cohere/rerank-v3.5": {"per_search_unit": 0.0015},
            "jina_ai/jina-reranker-v3": {"per_million_tokens": 0.05, "source": "my contract"},
            "voyage/rerank-2.5": None,  # remove: the cost becomes unknown
        }
    )
    assert custom is not shipped
    assert custom.cost("cohere", "rerank-v3.5", Usage(search_units=1)) == pytest.approx(0.0015)
    assert custom.cost("jina_ai", "jina-reranker-v3", Usage(total_tokens=10**6)) == (
        pytest.approx(0.05)
    )
    assert custom.cost("voyage", "rerank-2.5", Usage(total_tokens=10**6)) is None
    # The shipped table is unchanged.
    assert shipped.cost("cohere", "rerank-v3.5", Usage(search_units=1)) == before
    assert "voyage/rerank-2.5" in shipped
    assert custom.currency == shipped.currency


def test_an_override_replaces_the_whole_entry() -> None:
    custom = default_prices().with_overrides(
        {"cohere/rerank-v3.5": {"per_million_tokens": 1.0, "tokens": "input"}}
    )
    entry = custom.lookup("cohere", "rerank-v3.5")
    assert entry is not None
    assert entry.kind == "per_million_tokens"
    assert entry.per_search_unit is None
    assert custom.cost("cohere", "rerank-v3.5", Usage(search_units=1)) is None
    assert custom.cost("cohere", "rerank-v3.5", Usage(input_tokens=10**6)) == pytest.approx(1.0)


def test_price_entries_are_accepted_as_overrides() -> None:
    entry = PriceEntry(per_search_unit=0.001)
    custom = default_prices().with_overrides({"cohere/rerank-v3.5": entry})
    assert custom.lookup("cohere", "rerank-v3.5") is entry


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"per_search": 0.001}, "unknown field per_search"),
        ({"per_search_unit": 0.001, "currency": "EUR"}, "unknown field currency"),
        ({"per_search_unit": -0.001}, "per_search_unit must be >= 0"),
        ({"per_million_tokens": float("nan")}, "per_million_tokens must be >= 0"),
        ({"per_thousand_queries": float("inf")}, "per_thousand_queries must be >= 0"),
        ({}, "set exactly one of"),
        ({"source": "x"}, "set exactly one of"),
        ({"per_search_unit": 0.001, "per_million_tokens": 0.05}, "set exactly one of"),
        ({"per_search_unit": "0.002"}, "Expected `float | null`, got `str`"),
        ({"per_search_unit": True}, "got `bool`"),
        ({"per_million_tokens": 0.05, "tokens": "output"}, "Invalid enum value 'output'"),
        ({"per_search_unit": 0.002, "tokens": "total"}, "tokens applies only"),
        ({"per_search_unit": 0.002, "documents_per_query": 100}, "documents_per_query applies"),
        ({"per_thousand_queries": 1.0, "documents_per_query": 0}, "documents_per_query must be"),
        (0.002, "expected an object"),
    ],
)
def test_bad_overrides_raise_configuration_errors(override: Any, message: str) -> None:
    with pytest.raises(rerankit.ConfigurationError, match="cohere/rerank-v3.5") as info:
        default_prices().with_overrides({"cohere/rerank-v3.5": override})
    assert message in str(info.value)


@pytest.mark.parametrize("key", ["rerank-v3.5", "/rerank-v3.5", "cohere/", "voyage/rerank-*", 3])
def test_bad_override_keys_raise_configuration_errors(key: Any) -> None:
    with pytest.raises(rerankit.ConfigurationError, match="model string|wildcard"):
        default_prices().with_overrides({key: {"per_search_unit": 0.001}})


def test_overrides_must_be_a_mapping() -> None:
    with pytest.raises(rerankit.ConfigurationError, match="mapping"):
        default_prices().with_overrides([("cohere/rerank-v3.5", None)])  # type: ignore[arg-type]


def test_zero_is_a_valid_explicit_price() -> None:
    custom = default_prices().with_overrides({"hosted_vllm/*": {"per_million_tokens": 0}})
    assert custom.cost("hosted_vllm", "BAAI/bge-reranker-v2-m3", Usage(total_tokens=5)) == 0.0


# --- files and the client's prices= argument ----------------------------------------------------


def write(path: Path, content: Any) -> Path:
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_load_a_whole_table_from_a_file(tmp_path: Path) -> None:
    path = write(
        tmp_path / "prices.json",
        {
            "version": 1,
            "currency": "EUR",
            "updated": "2026-01-01",
            "prices": {"cohere/rerank-v3.5": {"per_search_unit": 0.0018, "source": "contract"}},
        },
    )
    loaded = load_prices(path)
    assert loaded.currency == "EUR"
    assert loaded.updated == "2026-01-01"
    assert list(loaded) == ["cohere/rerank-v3.5"]
    assert loaded.cost("cohere", "rerank-v3.5", Usage(search_units=10)) == pytest.approx(0.018)
    # A whole table: shipped prices are not merged in.
    assert loaded.cost("voyage", "rerank-2.5", Usage(total_tokens=10**6)) is None
    assert load_prices(str(path)).entries == loaded.entries


def test_the_shipped_file_loads_as_a_user_file() -> None:
    assert load_prices(PRICES_JSON).entries == default_prices().entries


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "price table"),
        ({"version": 2, "currency": "USD", "prices": {}}, "version 2 is not supported"),
        ({"currency": "USD", "prices": {}}, "missing required field `version`"),
        ({"version": 1, "currency": "USD", "prices": {}, "extra": 1}, "unknown field `extra`"),
        (
            {"version": 1, "currency": "USD", "prices": {"cohere/rerank-v3.5": None}},
            "expected a price, got null",
        ),
        (
            {"version": 1, "currency": "USD", "prices": {"cohere/rerank-v3.5": {"per": 1}}},
            "unknown field per",
        ),
    ],
)
def test_bad_price_files_raise_configuration_errors(
    tmp_path: Path, content: Any, message: str
) -> None:
    path = write(tmp_path / "prices.json", content)
    with pytest.raises(rerankit.ConfigurationError, match="price table") as info:
        load_prices(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_a_missing_price_file_raises_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(rerankit.ConfigurationError, match="cannot read price table"):
        load_prices(tmp_path / "missing.json")


@pytest.mark.parametrize("path", ["prices\x00.json", "prices\ud800.json"])
def test_a_price_path_the_os_cannot_take_raises_a_configuration_error(path: str) -> None:
    with pytest.raises(rerankit.ConfigurationError, match="cannot read price table"):
        rerankit.AsyncClient(prices=path)


def test_resolve_prices_for_each_kind_of_argument(tmp_path: Path) -> None:
    assert resolve_prices(None) is default_prices()
    custom = table({"cohere/rerank-v3.5": {"per_search_unit": 0.001}})
    assert resolve_prices(custom) is custom
    overridden = resolve_prices({"cohere/rerank-v3.5": {"per_search_unit": 0.001}})
    assert overridden.cost("cohere", "rerank-v3.5", Usage(search_units=1)) == pytest.approx(0.001)
    assert "voyage/rerank-2.5" in overridden  # the rest of the shipped table stays
    path = write(
        tmp_path / "p.json",
        {"version": 1, "currency": "USD", "prices": {"voyage/*": {"per_million_tokens": 1}}},
    )
    from_file = resolve_prices(path)
    assert list(from_file) == ["voyage/*"]
    assert list(resolve_prices(str(path))) == ["voyage/*"]
    with pytest.raises(rerankit.ConfigurationError, match="prices must be"):
        resolve_prices(42)  # type: ignore[arg-type]
    with pytest.raises(rerankit.ConfigurationError, match="unknown field"):
        resolve_prices({"cohere/rerank-v3.5": {"per_search_units": 0.001}})


def test_repr_and_mapping_views() -> None:
    prices = default_prices()
    assert repr(prices).startswith("PriceTable(<")
    assert len(prices) == len(prices.entries)
    with pytest.raises(TypeError):
        prices.entries["x/y"] = PriceEntry(per_search_unit=1.0)  # type: ignore[index]
