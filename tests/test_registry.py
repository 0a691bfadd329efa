"""Provider registry and dispatcher: run-time registration, entry points, failures."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import rerankit
from rerankit import (
    ConfigurationError,
    ProviderLoadError,
    RerankRequest,
    RerankResponse,
    RerankResult,
    UnknownProviderError,
)
from rerankit._dispatch import resolve_model
from rerankit._registry import BUILTIN_PROVIDERS
from rerankit.providers import Provider, ProviderContext

PLUGINS = Path(__file__).parent / "plugin_dist"


class ReverseProvider(Provider):
    """Scores later documents higher, returns them in input order and ignores top_n."""

    name = "reverse"

    async def rerank(self, request: RerankRequest, ctx: ProviderContext) -> RerankResponse:
        return RerankResponse(
            results=[
                RerankResult(index=i, relevance_score=i) for i in range(len(request.documents))
            ]
        )


@pytest.fixture
def reverse() -> Iterator[None]:
    rerankit.register_provider("reverse", ReverseProvider)
    yield
    rerankit.unregister_provider("reverse")


@pytest.mark.usefixtures("reverse")
def test_registered_provider_is_sorted_cut_and_back_filled() -> None:
    response = rerankit.rerank("reverse/any", "q", ["a", "b", {"text": "c", "id": 3}], top_n=2)
    assert [r.index for r in response.results] == [2, 1]
    assert [r.relevance_score for r in response.results] == [2.0, 1.0]
    assert response.results[0].document == {"text": "c", "id": 3}
    assert response.provider == "reverse"
    assert response.model == "any"
    assert "reverse" in rerankit.available_providers()


def test_model_strings_split_at_the_first_slash() -> None:
    assert resolve_model("cohere/rerank-v3.5") == ("cohere", "rerank-v3.5")
    assert resolve_model("local/org/model:v1") == ("local", "org/model:v1")
    assert resolve_model("org/model", "local") == ("local", "org/model")
    assert resolve_model("local/bm25", "local") == ("local", "bm25")
    assert resolve_model("rerank-v3.5") == ("cohere", "rerank-v3.5")
    assert resolve_model("bm25") == ("local", "bm25")


def test_unknown_provider_names_the_closest() -> None:
    with pytest.raises(
        UnknownProviderError, match="unknown provider 'cohre'.*did you mean 'cohere'"
    ) as info:
        resolve_model("cohre/rerank-v3.5")
    assert info.value.suggestion == "cohere"
    assert isinstance(info.value, LookupError)
    with pytest.raises(
        UnknownProviderError, match="unknown provider 'BAAI' in model 'BAAI/bge'"
    ) as info:
        resolve_model("BAAI/bge")
    assert info.value.suggestion is None
    with pytest.raises(UnknownProviderError, match="'nope'"):
        resolve_model("m", "nope")


def test_register_provider_checks_its_arguments() -> None:
    with pytest.raises(ConfigurationError, match="provider name"):
        rerankit.register_provider("a/b", ReverseProvider)
    with pytest.raises(ConfigurationError, match="provider name"):
        rerankit.register_provider("", ReverseProvider)

    class NotAProvider:
        def rerank(self) -> None: ...

    with pytest.raises(ProviderLoadError, match="async def rerank"):
        rerankit.register_provider("sync", NotAProvider)  # type: ignore[arg-type]


def test_runtime_registration_wins_over_built_ins() -> None:
    rerankit.register_provider("local", ReverseProvider)
    try:
        response = rerankit.rerank("local/bm25", "a", ["a", "b"])
        assert [r.index for r in response.results] == [1, 0]
    finally:
        rerankit.unregister_provider("local")
    response = rerankit.rerank("local/bm25", "a", ["a", "b"])
    assert [r.index for r in response.results] == [0, 1]


def test_provider_returning_garbage_is_a_validation_error() -> None:
    class Garbage(Provider):
        name = "garbage"

        async def rerank(self, request: RerankRequest, ctx: ProviderContext) -> RerankResponse:
            return [1, 2]  # type: ignore[return-value]

    class NaNScore(Provider):
        name = "nan"

        async def rerank(self, request: RerankRequest, ctx: ProviderContext) -> RerankResponse:
            return RerankResponse(results=[RerankResult(index=0, relevance_score=float("nan"))])

    rerankit.register_provider("garbage", Garbage)
    rerankit.register_provider("nan", NaNScore)
    try:
        with pytest.raises(rerankit.ResponseValidationError, match="not a RerankResponse"):
            rerankit.rerank("garbage/x", "q", ["a"])
        with pytest.raises(rerankit.ResponseValidationError, match="not finite"):
            rerankit.rerank("nan/x", "q", ["a"])
    finally:
        rerankit.unregister_provider("garbage")
        rerankit.unregister_provider("nan")


CHECKS = textwrap.dedent(
    """
    import json, sys
    import rerankit

    out = {"available": rerankit.available_providers()}
    try:
        r = rerankit.rerank("length/any", "q", ["ccc", "a", "bb"], top_n=2)
        out["length"] = [[x.index, x.relevance_score, x["document"]["text"]] for x in r.results]
    except rerankit.RerankitError as exc:
        out["length"] = type(exc).__name__
    for name in ("broken", "dup"):
        try:
            rerankit.rerank(name + "/x", "q", ["a"])
            out[name] = "no error"
        except rerankit.ProviderError as exc:
            out[name] = [type(exc).__name__, str(exc)]
    out["bm25"] = rerankit.rerank("local/bm25", "a", ["b", "a"]).results[0].index
    json.dump(out, sys.stdout)
    """
)


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("plugins")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(PLUGINS / "length"),
            str(PLUGINS / "dup"),
        ],
        check=True,
        timeout=120,
    )
    return target


def run_checks(plugin_path: Path, **env: str) -> dict[str, object]:
    import os

    result = subprocess.run(
        [sys.executable, "-c", CHECKS],
        env={**os.environ, "PYTHONPATH": str(plugin_path), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


@pytest.mark.slow
def test_third_party_distribution_resolves_through_entry_points(plugin_path: Path) -> None:
    out = run_checks(plugin_path)
    assert {"length", "broken", "dup", "cohere", "local"} <= set(out["available"])  # type: ignore[arg-type]
    assert out["length"] == [[0, 3.0, "ccc"], [2, 2.0, "bb"]]
    kind, message = out["broken"]  # type: ignore[misc]
    assert kind == "ProviderLoadError"
    assert "'broken' from rerankit-length failed to load" in message
    assert "ModuleNotFoundError" in message
    kind, message = out["dup"]  # type: ignore[misc]
    assert kind == "ProviderConflictError"
    assert "rerankit-dup" in message
    assert "rerankit-length" in message
    assert out["bm25"] == 1


@pytest.mark.slow
def test_autoload_can_be_disabled(plugin_path: Path) -> None:
    out = run_checks(plugin_path, RERANKIT_DISABLE_PLUGIN_AUTOLOAD="1")
    assert out["available"] == sorted(BUILTIN_PROVIDERS)
    assert out["length"] == "UnknownProviderError"
    assert out["broken"][0] == "UnknownProviderError"  # type: ignore[index]
    assert out["bm25"] == 1
