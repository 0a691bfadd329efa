"""The hand-written baseline: the least code that does a Cohere v2 rerank call properly.

One ``aiohttp.ClientSession``, a msgspec encoder for the request and a typed msgspec decoder
for the answer, Bearer auth, a status check, and the results sorted by descending score.
rerankit's overhead is measured against this.
"""

from __future__ import annotations

import aiohttp
import msgspec

__all__ = ["BaselineClient", "BaselineReply", "BaselineResult"]


class BaselineResult(msgspec.Struct):
    index: int
    relevance_score: float


class BaselineReply(msgspec.Struct):
    results: list[BaselineResult]
    id: str | None = None


def _score(result: BaselineResult) -> float:
    return result.relevance_score


class BaselineClient:
    """``POST {base}/v2/rerank`` with aiohttp and msgspec; nothing else."""

    def __init__(self, base_url: str, api_key: str) -> None:
        self._url = f"{base_url}/v2/rerank"
        self._headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        self._encoder = msgspec.json.Encoder()
        self._decoder = msgspec.json.Decoder(BaselineReply)
        self._session: aiohttp.ClientSession | None = None

    async def rerank(self, model: str, query: str, documents: list[str]) -> BaselineReply:
        session = self._session
        if session is None:
            session = self._session = aiohttp.ClientSession()
        body = self._encoder.encode({"model": model, "query": query, "documents": documents})
        async with session.post(self._url, data=body, headers=self._headers) as resp:
            data = await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}: {data[:200]!r}")
        reply = self._decoder.decode(data)
        reply.results.sort(key=_score, reverse=True)
        return reply

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()
