"""The public plugin interface, and rerankit's built-in providers.

A provider is a class with a class attribute ``name`` and
``async def rerank(self, request: RerankRequest, ctx: ProviderContext) -> RerankResponse``.
Publish one through the ``rerankit.providers`` entry point group; see ``docs/plugins.md``.
"""

from rerankit._settings import ProviderSettings
from rerankit.providers._base import ModelCapabilities, Provider, ProviderContext

__all__ = ["ModelCapabilities", "Provider", "ProviderContext", "ProviderSettings"]
