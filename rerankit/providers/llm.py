"""Any chat model as a reranker, over an OpenAI-compatible chat completions API.

``llm/<model>`` scores each document pointwise from the ``yes``/``no`` log-probabilities of a
one-token judgement; ``llm/listwise/<model>`` ranks windows of passages RankGPT-style. The
prompts, the scoring and the lenient reading of permutations live in ``_llm_prompts``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

from rerankit._errors import ConfigurationError, ResponseValidationError
from rerankit._prepare import missing_message
from rerankit._types import RerankRequest, RerankResponse, RerankResult, Usage
from rerankit.providers._base import ModelCapabilities, Provider, ProviderContext
from rerankit.providers._llm_prompts import (
    PROMPTS,
    listwise_messages,
    permutation,
    pointwise_messages,
    windows,
    yes_probability,
)
from rerankit.providers._rest import join_route

__all__ = ["LLMProvider"]

DEFAULT_BASE = "https://api.openai.com/v1"
LISTWISE = "listwise/"
POINTWISE = "pointwise/"
_INSTRUCTION = frozenset({"instruction"})
_POINTWISE_CAPS = ModelCapabilities(
    max_documents=1, score_kind="probability", parameters=_INSTRUCTION
)
_LISTWISE_CAPS = ModelCapabilities(listwise=True, parameters=_INSTRUCTION)
_DEFAULTS: dict[str, Any] = {
    "prompt": "qwen3",
    "top_logprobs": 20,
    "window": 20,
    "step": 10,
    "max_words": 300,
}


class _Position(msgspec.Struct):
    token: Any = None
    logprob: Any = None
    top_logprobs: list[Any] | None = None


class _Logprobs(msgspec.Struct):
    content: list[_Position] | None = None


class _Message(msgspec.Struct):
    content: str | None = None


class _Choice(msgspec.Struct):
    message: _Message | None = None
    logprobs: _Logprobs | None = None
    finish_reason: str | None = None


class _ChatUsage(msgspec.Struct):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None


class _Chat(msgspec.Struct):
    choices: list[_Choice] = msgspec.field(default_factory=list)
    usage: _ChatUsage | None = None


class _Tally:
    """Usage summed over the chat requests of one rerank call."""

    def __init__(self) -> None:
        self.requests = 0
        self.truncated = 0
        self.prompt: int | None = None
        self.completion: int | None = None
        self.total: int | None = None

    def add(self, chat: _Chat) -> None:
        self.requests += 1
        if chat.choices[0].finish_reason == "length":
            self.truncated += 1
        usage = chat.usage or _ChatUsage()
        self.prompt = _plus(self.prompt, usage.prompt_tokens)
        self.completion = _plus(self.completion, usage.completion_tokens)
        self.total = _plus(self.total, usage.total_tokens)

    def usage(self) -> Usage:
        return Usage(input_tokens=self.prompt, total_tokens=self.total)

    def meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"chat_requests": self.requests}
        if self.completion is not None:
            meta["completion_tokens"] = self.completion
        if self.truncated:
            meta["truncated_answers"] = self.truncated
        return meta


def _plus(total: int | None, value: int | None) -> int | None:
    return total if value is None else (value if total is None else total + value)


class LLMProvider(Provider):
    """``llm/<model>``: a chat model over any OpenAI-compatible ``/chat/completions`` API.

    Works with OpenAI, vLLM, Ollama (``http://localhost:11434/v1``), OpenRouter, a LiteLLM proxy
    and any server of that API: set the base URL (default ``https://api.openai.com/v1``;
    ``/chat/completions`` is appended) and, where the server needs one, a key (required for
    OpenAI's own host). Two methods:

    - ``llm/<model>`` (pointwise): one chat request per document, asking for a one-word
      ``yes``/``no`` judgement with ``max_tokens: 1``, ``logprobs: true`` and ``top_logprobs``;
      the score is ``P(yes) / (P(yes) + P(no))`` from the first token's log-probabilities, case
      and space variants pooled (score kind ``probability``). Option ``prompt``: ``"qwen3"``
      (default; Qwen3-Reranker's system prompt and ``<Instruct>/<Query>/<Document>`` turn, with
      ``instruction`` or its default task) or ``"plain"``. A model or server that returns no
      log-probabilities is an error that says so. Each document is its own request, so the
      client's concurrency, retries and rate limits apply per document.
    - ``llm/listwise/<model>``: RankGPT-style permutation ranking. Windows of ``window``
      passages (default 20, each cut to ``max_words`` words, default 300) move from the bottom
      of the list to the top in steps of ``step`` (default 10), one chat request each, so strong
      documents bubble up. An answer is read leniently: any non-digits separate ids, unknown
      and repeated ids are dropped, and the passages it does not name keep their first-stage
      order (a truncated or empty answer included). The score is synthesised from the final
      rank, ``(n - rank) / n``, so the score kind is ``unknown``; the model is listwise, so a call
      is never split across rerank calls.

    Usage: the chat ``usage`` summed over the requests (``prompt_tokens`` as input tokens,
    ``total_tokens``); ``provider_meta`` holds ``chat_requests``, ``completion_tokens`` and
    ``truncated_answers``. No price is shipped: pass ``prices=`` for the chat model.
    """

    name = "llm"
    api_key_env: ClassVar[tuple[str, ...]] = ("LLM_API_KEY", "OPENAI_API_KEY")
    api_base_env: ClassVar[tuple[str, ...]] = ("LLM_API_BASE", "OPENAI_BASE_URL")
    default_api_base = DEFAULT_BASE
    options = frozenset(_DEFAULTS)
    example_model = "llm/gpt-4o-mini"
    sources: ClassVar[tuple[str, ...]] = (
        "Qwen3-Reranker prompt (huggingface.co/Arastun/Qwen3-Reranker-4B handler.py and "
        "hq-bench/coreb-code-reranker chat_template.jinja, both from the model card): system "
        "'Judge whether the Document meets the requirements based on the Query and the "
        'Instruct provided. Note that the answer can only be "yes" or "no".\', user '
        "'<Instruct>: {instruction}\\n<Query>: {query}\\n<Document>: {doc}', default task 'Given "
        "a web search query, retrieve relevant passages that answer the query'; the score "
        "compares the yes and no token probabilities",
        "https://docs.sglang.io/docs/supported-models/rerank_models: decoder-only rerankers "
        "score by next-token log-probabilities of yes/no",
        "RankGPT (sunnweiwei/RankGPT rank_gpt.py): [i] passage turns, answer '[2] > [1]', "
        "sliding windows of 20 with step 10 from the bottom, ids repaired by dropping "
        "repeats and unknown ids and appending the missing ones in order",
    )

    @classmethod
    def needs_api_key(cls, api_base: str | None) -> bool:
        """OpenAI's own API needs a key; self-hosted servers usually do not."""
        return api_base is None or api_base.rstrip("/") == DEFAULT_BASE

    def capabilities(self, model: str) -> ModelCapabilities:
        return _LISTWISE_CAPS if model.startswith(LISTWISE) else _POINTWISE_CAPS

    async def rerank(self, request: RerankRequest, ctx: ProviderContext) -> RerankResponse:
        if not ctx.api_key and self.needs_api_key(ctx.api_base):
            raise ConfigurationError(missing_message(self.name, "api_key", self.api_key_env))
        options = _options(request.options)
        url = join_route(ctx.api_base or DEFAULT_BASE, "/chat/completions")
        tally = _Tally()
        if request.model.startswith(LISTWISE):
            results = await self._listwise(request, ctx, url, options, tally)
        else:
            results = await self._pointwise(request, ctx, url, options, tally)
        return RerankResponse(results=results, usage=tally.usage(), provider_meta=tally.meta())

    async def _chat(
        self, ctx: ProviderContext, url: str, body: dict[str, Any], tally: _Tally
    ) -> _Chat:
        answer = await ctx.post(url, body)
        chat = ctx.decode(answer.body, _Chat)
        if not chat.choices:
            raise ResponseValidationError(
                f"llm answered without choices for model {ctx.model!r}",
                provider=ctx.provider,
                model=ctx.model,
            )
        tally.add(chat)
        return chat

    async def _pointwise(
        self,
        request: RerankRequest,
        ctx: ProviderContext,
        url: str,
        options: dict[str, Any],
        tally: _Tally,
    ) -> list[RerankResult]:
        model = request.model.removeprefix(POINTWISE)
        results = []
        for index, document in enumerate(request.documents):
            messages = pointwise_messages(
                options["prompt"], request.query, document, request.instruction
            )
            body = {
                "model": model,
                "messages": messages,
                "max_tokens": 1,
                "temperature": 0,
                "logprobs": True,
                "top_logprobs": options["top_logprobs"],
            }
            chat = await self._chat(ctx, url, body, tally)
            results.append(RerankResult(index, _judgement(chat.choices[0], ctx)))
        return results

    async def _listwise(
        self,
        request: RerankRequest,
        ctx: ProviderContext,
        url: str,
        options: dict[str, Any],
        tally: _Tally,
    ) -> list[RerankResult]:
        model = request.model.removeprefix(LISTWISE)
        order = list(range(len(request.documents)))
        if len(order) == 1:  # nothing to rank against: no request
            return [RerankResult(0, 1.0)]
        for start, end in windows(len(order), options["window"], options["step"]):
            passages = [request.documents[index] for index in order[start:end]]
            messages = listwise_messages(
                request.query, passages, request.instruction, options["max_words"]
            )
            body = {
                "model": model,
                "messages": messages,
                "temperature": 0,
                "max_tokens": 8 * len(passages) + 16,
            }
            chat = await self._chat(ctx, url, body, tally)
            message = chat.choices[0].message
            answer = message.content if message is not None and message.content else ""
            ranked = permutation(answer, len(passages))
            order[start:end] = [order[start + position] for position in ranked]
        count = len(order)
        return [RerankResult(index, (count - rank) / count) for rank, index in enumerate(order)]


def _judgement(choice: _Choice, ctx: ProviderContext) -> float:
    """P(yes) against P(no) from the first answer token; a clear error when it cannot be read."""
    positions = choice.logprobs.content if choice.logprobs is not None else None
    if not positions or not positions[0].top_logprobs:
        raise ResponseValidationError(
            f"llm model {ctx.model!r} answered without top_logprobs: the model or server does "
            "not return log-probabilities; use a model that does, or llm/listwise/<model>",
            provider=ctx.provider,
            model=ctx.model,
        )
    score = yes_probability(positions[0].top_logprobs)
    if score is None:
        raise ResponseValidationError(
            f"llm model {ctx.model!r} put neither 'yes' nor 'no' among its top tokens; try "
            "prompt='plain', a larger top_logprobs, or llm/listwise/<model>",
            provider=ctx.provider,
            model=ctx.model,
        )
    return score


def _options(given: dict[str, Any]) -> dict[str, Any]:
    """The method options with their defaults, each checked."""
    options = {**_DEFAULTS, **given}
    if options["prompt"] not in PROMPTS:
        raise ConfigurationError(
            f"llm option prompt must be one of {', '.join(map(repr, PROMPTS))}, "
            f"got {options['prompt']!r}"
        )
    for name in ("top_logprobs", "window", "step", "max_words"):
        value = options[name]
        if type(value) is not int or value < 1:
            raise ConfigurationError(f"llm option {name} must be a positive int, got {value!r}")
    if options["step"] > options["window"]:
        raise ConfigurationError(
            f"llm option step ({options['step']}) must not exceed window ({options['window']})"
        )
    return options
