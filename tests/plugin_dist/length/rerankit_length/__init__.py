from rerankit import RerankRequest, RerankResponse, RerankResult
from rerankit.providers import Provider, ProviderContext


class LengthProvider(Provider):
    name = "length"

    async def rerank(self, request: RerankRequest, ctx: ProviderContext) -> RerankResponse:
        return RerankResponse(
            results=[
                RerankResult(index=i, relevance_score=float(len(d)))
                for i, d in enumerate(request.documents)
            ]
        )
