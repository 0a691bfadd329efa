"""Provider registry: entry-point discovery, run-time registration and lazy loading.

Entry-point names are read on the first lookup; a provider's module is imported only when a
model string first names it, so ``import rerankit`` stays cheap.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
import threading
from typing import TYPE_CHECKING

import msgspec

from rerankit._errors import (
    ProviderConflictError,
    ProviderLoadError,
    UnknownProviderError,
)

if TYPE_CHECKING:
    from rerankit.providers._base import Provider

__all__ = [
    "ENTRY_POINT_GROUP",
    "RUNTIME_DISTRIBUTION",
    "ProviderInfo",
    "available_providers",
    "load_provider",
    "provider_info",
    "register_provider",
    "unregister_provider",
]

ENTRY_POINT_GROUP = "rerankit.providers"
AUTOLOAD_ENV = "RERANKIT_DISABLE_PLUGIN_AUTOLOAD"
_OWN_DISTRIBUTION = "rerankit"
RUNTIME_DISTRIBUTION = "<registered at run time>"

BUILTIN_PROVIDERS: dict[str, str] = {
    "azure_ai": "rerankit.providers.cohere:AzureAIProvider",
    "bedrock": "rerankit.providers.bedrock:BedrockProvider",
    "cloudflare": "rerankit.providers.rerank_hosts:CloudflareProvider",
    "cohere": "rerankit.providers.cohere:CohereProvider",
    "cohere_compatible": "rerankit.providers.cohere_compatible:CohereCompatibleProvider",
    "contextual": "rerankit.providers.cohere_like:ContextualProvider",
    "dashscope": "rerankit.providers.dashscope:DashScopeProvider",
    "deepinfra": "rerankit.providers.deepinfra:DeepInfraProvider",
    "fireworks_ai": "rerankit.providers.cohere_compatible:FireworksAIProvider",
    "hosted_vllm": "rerankit.providers.cohere_compatible:HostedVLLMProvider",
    "huggingface": "rerankit.providers.tei:HuggingFaceTEIProvider",
    "infinity": "rerankit.providers.cohere_compatible:InfinityProvider",
    "jina_ai": "rerankit.providers.cohere_compatible:JinaAIProvider",
    "litellm_proxy": "rerankit.providers.cohere_compatible:LiteLLMProxyProvider",
    "llamacpp": "rerankit.providers.rerank_hosts:LlamaCppProvider",
    "llm": "rerankit.providers.llm:LLMProvider",
    "local": "rerankit.providers.local:LocalProvider",
    "localai": "rerankit.providers.rerank_hosts:LocalAIProvider",
    "mixedbread": "rerankit.providers.cohere_like:MixedbreadProvider",
    "novita": "rerankit.providers.rerank_hosts:NovitaProvider",
    "nvidia_nim": "rerankit.providers.nvidia:NvidiaNIMProvider",
    "openrouter": "rerankit.providers.rerank_hosts:OpenRouterProvider",
    "pinecone": "rerankit.providers.cohere_like:PineconeProvider",
    "qwencloud": "rerankit.providers.dashscope:QwenCloudProvider",
    "sglang": "rerankit.providers.rerank_hosts:SGLangProvider",
    "siliconflow": "rerankit.providers.cohere_compatible:SiliconFlowProvider",
    "tensorrt_llm": "rerankit.providers.rerank_hosts:TensorRTLLMProvider",
    "together_ai": "rerankit.providers.cohere_compatible:TogetherAIProvider",
    "vertex_ai": "rerankit.providers.vertex:VertexAIProvider",
    "voyage": "rerankit.providers.cohere_like:VoyageProvider",
    "watsonx": "rerankit.providers.watsonx:WatsonxProvider",
    "xinference": "rerankit.providers.rerank_hosts:XinferenceProvider",
    "zeroentropy": "rerankit.providers.cohere_like:ZeroEntropyProvider",
}
"""The built-ins, also declared as entry points; used as they are when metadata is missing."""

_lock = threading.RLock()
_runtime: dict[str, type[Provider]] = {}
_loaded: dict[str, type[Provider]] = {}
_claims: dict[str, dict[str, str]] | None = None
"""name -> {distribution: "module:attr"}, built on first lookup."""


def _autoload_disabled() -> bool:
    return os.environ.get(AUTOLOAD_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _scan() -> dict[str, dict[str, str]]:
    global _claims
    if _claims is not None:
        return _claims
    with _lock:
        if _claims is not None:
            return _claims
        claims: dict[str, dict[str, str]] = {
            name: {_OWN_DISTRIBUTION: target} for name, target in BUILTIN_PROVIDERS.items()
        }
        if not _autoload_disabled():
            from importlib.metadata import entry_points

            for ep in entry_points(group=ENTRY_POINT_GROUP):
                dist = ep.dist.name if ep.dist is not None else "<unknown distribution>"
                if _normalise(dist) == _OWN_DISTRIBUTION and ep.name in BUILTIN_PROVIDERS:
                    continue
                claims.setdefault(ep.name, {})[dist] = ep.value
        _claims = claims
        return claims


def _normalise(dist: str) -> str:
    return dist.lower().replace("_", "-").replace(".", "-")


def available_providers() -> list[str]:
    """Every provider name a model string can start with, sorted."""
    return sorted(set(_scan()) | set(_runtime))


class ProviderInfo(msgspec.Struct, frozen=True, kw_only=True):
    """Where a provider name comes from, without loading it.

    ``distributions`` are the installed distributions declaring it (``("rerankit",)`` for a
    built-in; more than one is a conflict), or ``("<registered at run time>",)`` after
    ``register_provider``, which wins over them.
    """

    name: str
    distributions: tuple[str, ...]
    runtime: bool = False


def provider_info(name: str) -> ProviderInfo:
    """Where provider ``name`` comes from; ``UnknownProviderError`` for an unknown name."""
    if name in _runtime:
        return ProviderInfo(name=name, distributions=(RUNTIME_DISTRIBUTION,), runtime=True)
    claims = _scan().get(name)
    if not claims:
        raise unknown_provider(name)
    return ProviderInfo(name=name, distributions=tuple(sorted(claims)))


def register_provider(name: str, provider: type[Provider]) -> None:
    """Register ``provider`` under ``name`` at run time; it wins over installed plugins."""
    _check_name(name)
    _check_class(name, provider, "register_provider()")
    with _lock:
        _runtime[name] = provider
        _loaded.pop(name, None)


def unregister_provider(name: str) -> None:
    """Remove a run-time registration (installed plugins and built-ins are untouched)."""
    with _lock:
        _runtime.pop(name, None)
        _loaded.pop(name, None)


def load_provider(name: str) -> type[Provider]:
    """The provider class registered under ``name``, importing its module on first use."""
    cls = _loaded.get(name)
    if cls is not None:
        return cls
    with _lock:
        cls = _runtime.get(name) or _import(name)
        _loaded[name] = cls
        return cls


def is_registered(name: str) -> bool:
    """Whether ``name`` is a provider name (without loading it)."""
    return name in _runtime or name in _scan()


def _import(name: str) -> type[Provider]:
    claims = _scan().get(name)
    if not claims:
        raise unknown_provider(name)
    if len(claims) > 1:
        dists = tuple(sorted(claims))
        raise ProviderConflictError(
            f"provider {name!r} is registered by more than one distribution: "
            f"{', '.join(dists)}; uninstall all but one, or call "
            f"rerankit.register_provider({name!r}, ...) to choose",
            name=name,
            distributions=dists,
        )
    ((dist, target),) = claims.items()
    module_name, _, attr = target.partition(":")
    try:
        obj: object = importlib.import_module(module_name)
        for part in attr.split(".") if attr else ():
            obj = getattr(obj, part)
    except Exception as exc:
        raise ProviderLoadError(
            f"provider {name!r} from {dist} failed to load ({target}): {type(exc).__name__}: {exc}",
            name=name,
        ) from exc
    _check_class(name, obj, f"{dist} ({target})")
    return obj  # type: ignore[return-value]


def _check_name(name: object) -> None:
    from rerankit._errors import ConfigurationError

    if not isinstance(name, str) or not name or "/" in name or name != name.strip():
        raise ConfigurationError(
            f"provider name must be a non-empty string without '/' or spaces, got {name!r}"
        )


def _check_class(name: str, obj: object, source: str) -> None:
    rerank = getattr(obj, "rerank", None)
    if not inspect.isclass(obj) or not inspect.iscoroutinefunction(rerank):
        raise ProviderLoadError(
            f"provider {name!r} from {source} is not a provider class: it needs a class with "
            "an 'async def rerank(self, request, ctx)' method",
            name=name,
        )


def unknown_provider(name: str, model: str | None = None) -> UnknownProviderError:
    """An ``UnknownProviderError`` naming the closest known provider, if any."""
    known = available_providers()
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    suggestion = close[0] if close else None
    where = f" in model {model!r}" if model else ""
    message = f"unknown provider {name!r}{where}"
    if suggestion:
        message += f"; did you mean {suggestion!r}?"
    message += f" Known providers: {', '.join(known)}."
    return UnknownProviderError(message, name=name, suggestion=suggestion)


def _reset_for_tests() -> None:
    """Forget scanned entry points and loaded classes (tests change the environment)."""
    global _claims
    with _lock:
        _claims = None
        _loaded.clear()
