"""rerankit: rerank documents by relevance to a query, over any rerank API or locally.

import rerankit
response = rerankit.rerank(model="local/bm25", query="...", documents=[...])
response = await rerankit.arerank(model="cohere/rerank-v3.5", query="...", documents=[...])
"""

from rerankit._cache import CacheStats, MemoryCache, ResponseCache, SQLiteCache
from rerankit._check import ModelCheck
from rerankit._client import AsyncClient, arerank, arerank_many
from rerankit._cost import PriceTable
from rerankit._errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    ProviderConflictError,
    ProviderError,
    ProviderLoadError,
    RateLimitError,
    RerankitError,
    RerankitWarning,
    ResponseValidationError,
    UnknownProviderError,
    UnprocessableEntityError,
    UnsupportedParameterError,
)
from rerankit._events import RerankEvent
from rerankit._many import RerankJob
from rerankit._quota import LocalQuota, Quota, QuotaBackend
from rerankit._registry import available_providers, register_provider, unregister_provider
from rerankit._retry import RetryPolicy
from rerankit._settings import ProviderSettings
from rerankit._sync._client import Client, rerank, rerank_many
from rerankit._tokens import HFTokenizer, TokenCounter, TokenEstimator
from rerankit._types import Document, RerankRequest, RerankResponse, RerankResult, ScoreKind, Usage
from rerankit._version import __version__

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncClient",
    "AuthenticationError",
    "BadRequestError",
    "CacheStats",
    "Client",
    "ConfigurationError",
    "Document",
    "HFTokenizer",
    "InternalServerError",
    "LocalQuota",
    "MemoryCache",
    "ModelCheck",
    "NotFoundError",
    "PermissionDeniedError",
    "PriceTable",
    "ProviderConflictError",
    "ProviderError",
    "ProviderLoadError",
    "ProviderSettings",
    "Quota",
    "QuotaBackend",
    "RateLimitError",
    "RerankEvent",
    "RerankJob",
    "RerankRequest",
    "RerankResponse",
    "RerankResult",
    "RerankitError",
    "RerankitWarning",
    "ResponseCache",
    "ResponseValidationError",
    "RetryPolicy",
    "SQLiteCache",
    "ScoreKind",
    "TokenCounter",
    "TokenEstimator",
    "UnknownProviderError",
    "UnprocessableEntityError",
    "UnsupportedParameterError",
    "Usage",
    "__version__",
    "arerank",
    "arerank_many",
    "available_providers",
    "register_provider",
    "rerank",
    "rerank_many",
    "unregister_provider",
]
