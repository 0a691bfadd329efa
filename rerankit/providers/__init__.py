"""The public plugin interface, and rerankit's built-in providers.

A provider is a class with a class attribute ``name`` and
``async def rerank(self, request: RerankRequest, ctx: ProviderContext) -> RerankResponse``.
Publish one through the ``rerankit.providers`` entry point group; see ``docs/plugins.md``.
``provider_info(name)`` tells where an installed provider name comes from, and
``load_provider(name)`` returns its class.
"""

from rerankit._images import ImageInput
from rerankit._registry import ProviderInfo, load_provider, provider_info
from rerankit._settings import ProviderSettings
from rerankit.providers._base import ModelCapabilities, Provider, ProviderContext

__all__ = [
    "ImageInput",
    "ModelCapabilities",
    "Provider",
    "ProviderContext",
    "ProviderInfo",
    "ProviderSettings",
    "load_provider",
    "provider_info",
]
