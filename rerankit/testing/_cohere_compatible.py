"""Fakes of the cohere-compatible rerank APIs: a preset of ``TableFake`` per vendor.

``CohereShapedFake`` (``TableFake``) is the Cohere v1 wire format with the details vendors vary
as parameters (accepted fields, where the results sit, the score field, whether documents are
echoed by default and how, object documents, a raw-score switch). Each vendor's fake sets those
and adds its own response envelope and checks.
"""

from __future__ import annotations

from typing import Any

from rerankit.testing._cohere import V1_FIELDS
from rerankit.testing._images import image_words, plain_base64
from rerankit.testing._server import ReceivedRequest
from rerankit.testing._table import COHERE_FIELDS, CohereShapedFake

__all__ = [
    "CohereCompatibleFake",
    "CohereShapedFake",
    "FireworksFake",
    "InfinityFake",
    "JinaFake",
    "LiteLLMProxyFake",
    "SiliconFlowFake",
    "TogetherFake",
    "VLLMFake",
]


class CohereCompatibleFake(CohereShapedFake):
    """A generic self-hosted Cohere-shaped server (``/rerank`` and ``/v1/rerank``).

    It ignores unknown fields, answers an ``id`` and ``usage: {prompt_tokens, total_tokens}``;
    set ``results_key`` (``"data"``, ``""``) and ``score_key`` (``"score"``) for the variants.
    """

    paths = ("/rerank", "/v1/rerank")

    def envelope(self, body: Any, results: list[dict[str, Any]]) -> dict[str, Any]:
        tokens = self.tokens(body)
        return {"id": self.next_id(), "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


class LiteLLMProxyFake(CohereShapedFake):
    """A LiteLLM proxy's rerank routes: the Cohere v1 shape plus ``max_tokens_per_doc`` and
    ``instruction``; usage in ``meta.billed_units`` and ``meta.tokens``."""

    paths = ("/v1/rerank", "/rerank", "/v2/rerank")
    fields = V1_FIELDS | {"max_tokens_per_doc", "instruction"}
    document_kinds = "either"

    def envelope(self, body: Any, results: list[dict[str, Any]]) -> dict[str, Any]:
        tokens = self.tokens(body)
        return {
            "id": self.next_id(),
            "meta": {
                "billed_units": {"search_units": 1, "total_tokens": tokens},
                "tokens": {"input_tokens": tokens, "output_tokens": 0},
            },
        }


class TogetherFake(CohereShapedFake):
    """Together AI's ``/v1/rerank``: string or object documents with ``rank_fields``; answers
    ``{object, id, model, results, usage: {prompt_tokens, completion_tokens, total_tokens}}``."""

    paths = ("/v1/rerank",)
    fields = COHERE_FIELDS | {"rank_fields"}
    document_kinds = "either"

    def envelope(self, body: Any, results: list[dict[str, Any]]) -> dict[str, Any]:
        tokens = self.tokens(body)
        return {
            "object": "rerank",
            "id": self.next_id(),
            "model": body["model"],
            "usage": {"prompt_tokens": tokens, "completion_tokens": 0, "total_tokens": tokens},
        }


class JinaFake(CohereShapedFake):
    """Jina AI's ``/v1/rerank``: strings or ``{text}`` objects, and ``{image}`` objects for
    ``image_models`` (an http(s) URL or plain base64, alone in its object); documents are echoed
    unless ``return_documents`` is false; answers ``{model, usage: {total_tokens}, results}``.
    An image scores on its URL, or on its bytes read as Latin-1."""

    paths = ("/v1/rerank",)
    fields = COHERE_FIELDS
    document_kinds = "text_objects"
    return_documents_default = True
    image_models = frozenset({"jina-reranker-m0"})

    def _kind_ok(self, doc: Any) -> bool:
        if isinstance(doc, dict) and set(doc) == {"image"}:
            return isinstance(doc["image"], str)
        return super()._kind_ok(doc)

    def check(self, body: Any, request: ReceivedRequest) -> None:
        images = [d for d in body["documents"] if isinstance(d, dict) and "image" in d]
        self.require(
            not images or body["model"] in self.image_models,
            f"model {body['model']} does not take images",
        )

    def text(self, doc: Any, body: Any) -> str:
        if isinstance(doc, dict) and "image" in doc:
            image: str = doc["image"]
            if image.startswith(("http://", "https://")):
                return image
            return image_words(plain_base64(image, "documents[].image"))
        return super().text(doc, body)

    def envelope(self, body: Any, results: list[dict[str, Any]]) -> dict[str, Any]:
        return {"model": body["model"], "usage": {"total_tokens": self.tokens(body)}}


class InfinityFake(CohereShapedFake):
    """An infinity server's ``/rerank``: ``raw_scores: true`` answers logits; answers
    ``{object, id, created, model, results, usage: {prompt_tokens, total_tokens}}``."""

    paths = ("/rerank",)
    fields = COHERE_FIELDS | {"raw_scores"}
    raw_option = ("raw_scores", True)
    max_documents = 2_048

    def envelope(self, body: Any, results: list[dict[str, Any]]) -> dict[str, Any]:
        tokens = self.tokens(body)
        return {
            "object": "rerank",
            "id": self.next_id(),
            "created": 1_700_000_000,
            "model": body["model"],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }


class VLLMFake(CohereShapedFake):
    """A vLLM server's ``/rerank`` (and the ``/v1``, ``/v2`` aliases): ignores unknown fields,
    always echoes documents, answers logits with ``use_activation: false``; answers
    ``{id, model, usage: {total_tokens}, results}``."""

    paths = ("/rerank", "/v1/rerank", "/v2/rerank")
    return_documents_default = True
    raw_option = ("use_activation", False)

    def check(self, body: Any, request: ReceivedRequest) -> None:
        for field in ("max_tokens_per_doc", "truncate_prompt_tokens"):
            value = body.get(field)
            self.require(value is None or type(value) is int, f"{field} must be an int")
        instruction = body.get("instruction")
        self.require(instruction is None or isinstance(instruction, str), "bad instruction")

    def envelope(self, body: Any, results: list[dict[str, Any]]) -> dict[str, Any]:
        usage = {"total_tokens": self.tokens(body)}
        return {"id": self.next_id(), "model": body["model"], "usage": usage}


class FireworksFake(CohereShapedFake):
    """Fireworks AI's ``/inference/v1/rerank``: string documents only, no unknown fields, model
    ids ``fireworks/<name>`` or ``accounts/<account>/models/<name>``, instruction as ``task``;
    documents echoed as strings unless ``return_documents`` is false; results under ``data``."""

    paths = ("/inference/v1/rerank",)
    fields = COHERE_FIELDS | {"task"}
    results_key = "data"
    return_documents_default = True
    echo = "string"

    def check(self, body: Any, request: ReceivedRequest) -> None:
        model = body["model"]
        parts = model.split("/")
        self.require(
            (len(parts) == 2 and parts[0] == "fireworks")
            or (len(parts) == 4 and parts[0] == "accounts" and parts[2] == "models"),
            f"model not found: {model}",
        )
        task = body.get("task")
        self.require(task is None or isinstance(task, str), "task must be a string")

    def envelope(self, body: Any, results: list[dict[str, Any]]) -> dict[str, Any]:
        tokens = self.tokens(body)
        return {
            "object": "list",
            "model": body["model"],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }


_SF_CHUNKING = frozenset(
    {
        "BAAI/bge-reranker-v2-m3",
        "Pro/BAAI/bge-reranker-v2-m3",
        "netease-youdao/bce-reranker-base_v1",
    }
)
_SF_INSTRUCTION = frozenset(
    {"Qwen/Qwen3-Reranker-8B", "Qwen/Qwen3-Reranker-4B", "Qwen/Qwen3-Reranker-0.6B"}
)


class SiliconFlowFake(CohereShapedFake):
    """SiliconFlow's ``/v1/rerank``: ``instruction`` for the Qwen3 rerankers only,
    ``max_chunks_per_doc`` and ``overlap_tokens`` (at most 80) for bge and bce only; answers
    ``{id, results, tokens: {input_tokens, output_tokens}}``."""

    paths = ("/v1/rerank",)
    fields = COHERE_FIELDS | {"instruction", "max_chunks_per_doc", "overlap_tokens"}
    output_tokens = 0

    def check(self, body: Any, request: ReceivedRequest) -> None:
        model = body["model"]
        if "instruction" in body:
            self.require(model in _SF_INSTRUCTION, f"{model} does not support instruction")
            self.require(isinstance(body["instruction"], str), "instruction must be a string")
        for field in ("max_chunks_per_doc", "overlap_tokens"):
            if field in body:
                self.require(model in _SF_CHUNKING, f"{model} does not support {field}")
                self.require(type(body[field]) is int, f"{field} must be an int")
        self.require(body.get("overlap_tokens", 0) <= 80, "overlap_tokens must be <= 80")

    def envelope(self, body: Any, results: list[dict[str, Any]]) -> dict[str, Any]:
        tokens = self.tokens(body)
        return {
            "id": self.next_id(),
            "tokens": {"input_tokens": tokens, "output_tokens": self.output_tokens},
        }
