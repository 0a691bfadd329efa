"""The public surface: names exported, result access styles, and a light import."""

from __future__ import annotations

import json
import subprocess
import sys

import msgspec

import rerankit
import rerankit.providers
import rerankit.testing
from rerankit import RerankResponse, RerankResult, Usage


def test_public_names_are_pinned() -> None:
    assert rerankit.__all__ == sorted(rerankit.__all__)
    assert set(rerankit.__all__) == {
        "APIConnectionError",
        "APIError",
        "APIStatusError",
        "APITimeoutError",
        "AsyncClient",
        "AuthenticationError",
        "BadRequestError",
        "Client",
        "ConfigurationError",
        "Document",
        "InternalServerError",
        "LocalQuota",
        "NotFoundError",
        "PermissionDeniedError",
        "ProviderConflictError",
        "ProviderError",
        "ProviderLoadError",
        "ProviderSettings",
        "Quota",
        "QuotaBackend",
        "RateLimitError",
        "RerankRequest",
        "RerankResponse",
        "RerankResult",
        "RerankitError",
        "RerankitWarning",
        "ResponseValidationError",
        "RetryPolicy",
        "ScoreKind",
        "UnknownProviderError",
        "UnprocessableEntityError",
        "HFTokenizer",
        "TokenCounter",
        "TokenEstimator",
        "UnsupportedParameterError",
        "Usage",
        "__version__",
        "arerank",
        "arerank_many",
        "rerank_many",
        "RerankJob",
        "RerankEvent",
        "PriceTable",
        "CacheStats",
        "MemoryCache",
        "ModelCheck",
        "ResponseCache",
        "SQLiteCache",
        "available_providers",
        "register_provider",
        "rerank",
        "unregister_provider",
    }
    assert set(rerankit.providers.__all__) == {
        "ImageInput",
        "ModelCapabilities",
        "Provider",
        "ProviderContext",
        "ProviderInfo",
        "ProviderSettings",
        "load_provider",
        "provider_info",
    }
    for module in (rerankit, rerankit.providers, rerankit.testing):
        for name in module.__all__:
            assert hasattr(module, name), name


def test_error_tree() -> None:
    assert issubclass(rerankit.ConfigurationError, ValueError)
    assert issubclass(rerankit.UnknownProviderError, (rerankit.ProviderError, LookupError))
    assert issubclass(rerankit.APITimeoutError, (rerankit.APIConnectionError, TimeoutError))
    for cls in (rerankit.BadRequestError, rerankit.RateLimitError, rerankit.InternalServerError):
        assert issubclass(cls, rerankit.APIStatusError)
    for name in rerankit.__all__:
        obj = getattr(rerankit, name)
        if isinstance(obj, type) and issubclass(obj, Exception) and not issubclass(obj, Warning):
            assert issubclass(obj, rerankit.RerankitError), name


def test_results_read_as_attributes_and_as_dicts() -> None:
    result = RerankResult(index=2, relevance_score=0.5, document={"text": "t"})
    assert result["index"] == result.index == 2
    assert result["document"]["text"] == "t"
    assert result.get("missing", "default") == "default"
    assert dict(result) == {"index": 2, "relevance_score": 0.5, "document": {"text": "t"}}
    bare = RerankResult(index=0, relevance_score=0.1)
    assert "document" not in bare
    assert bare.get("document") is None
    assert dict(bare) == {"index": 0, "relevance_score": 0.1}
    response = RerankResponse(results=[result], id="r1", usage=Usage(search_units=2))
    assert response["results"][0] is result
    assert response["meta"] == {"billed_units": {"search_units": 2}}
    assert response["id"] == "r1"
    encoded = json.loads(msgspec.json.encode(response))
    assert encoded["results"] == [{"index": 2, "relevance_score": 0.5, "document": {"text": "t"}}]


def test_unknown_usage_stays_none() -> None:
    assert Usage().search_units is None
    assert RerankResponse(results=[]).meta == {}


def test_import_is_light() -> None:
    heavy = ("aiohttp", "anyio", "importlib.metadata")
    code = (
        "import sys, json, rerankit; "
        f"print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(out.stdout) == []
