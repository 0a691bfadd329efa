"""Pure parts of the chat-model reranker: prompts, yes/no scores, permutations, windows.

Pointwise: one chat request per document asks for a one-word ``yes``/``no`` judgement, and the
score is the probability of ``yes`` against ``no`` from the first answer token's log-probs,
``exp(yes) / (exp(yes) + exp(no))`` (the Qwen3-Reranker scoring). Listwise (RankGPT): each window
of passages is labelled ``[1]``..``[n]`` and the model answers an order such as
``[2] > [3] > [1]``; the answer is read leniently (``permutation``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from typing import Any

__all__ = [
    "DEFAULT_INSTRUCTION",
    "PROMPTS",
    "listwise_messages",
    "permutation",
    "pointwise_messages",
    "windows",
    "yes_probability",
]

DEFAULT_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"
"""The Qwen3-Reranker model card's default task."""

_QWEN3_SYSTEM = (
    "Judge whether the Document meets the requirements based on the Query and the Instruct "
    'provided. Note that the answer can only be "yes" or "no".'
)
_PLAIN_SYSTEM = (
    "You judge search results. Answer with a single word: yes if the document is relevant to "
    "the query, no if it is not."
)
PROMPTS = ("qwen3", "plain")
"""The pointwise prompt formats: Qwen3-Reranker's, and a plain one for any chat model."""

_RANKGPT_SYSTEM = (
    "You are RankGPT, an intelligent assistant that can rank passages based on their "
    "relevancy to the query."
)
_NON_DIGITS = re.compile(r"[^0-9]+")


def pointwise_messages(
    prompt: str, query: str, document: str, instruction: str | None
) -> list[dict[str, str]]:
    """The chat messages asking whether ``document`` answers ``query`` (``prompt`` format)."""
    if prompt == "qwen3":
        task = instruction or DEFAULT_INSTRUCTION
        user = f"<Instruct>: {task}\n<Query>: {query}\n<Document>: {document}"
        return [{"role": "system", "content": _QWEN3_SYSTEM}, {"role": "user", "content": user}]
    lines = [f"Instruction: {instruction}"] if instruction else []
    lines += [f"Query: {query}", f"Document: {document}", "Is the document relevant? yes or no"]
    return [
        {"role": "system", "content": _PLAIN_SYSTEM},
        {"role": "user", "content": "\n".join(lines)},
    ]


def _label(token: Any) -> str | None:
    if not isinstance(token, str):
        return None
    word = token.strip().strip(".!,:;\"'").lower()
    return word if word in ("yes", "no") else None


def yes_probability(top_logprobs: Sequence[Any]) -> float | None:
    """P(yes) against P(no) from one position's ``top_logprobs`` (``[{token, logprob}]``).

    Case and space variants (``yes``, `` Yes``, ``YES.``) are pooled. A side missing from the
    list is given the smallest listed probability, an upper bound for it; ``None`` when neither
    side is listed.
    """
    pooled: dict[str, float] = {}
    smallest = math.inf
    for entry in top_logprobs:
        if not isinstance(entry, dict):
            continue
        logprob = entry.get("logprob")
        if not isinstance(logprob, int | float) or math.isnan(logprob):
            continue
        smallest = min(smallest, float(logprob))
        label = _label(entry.get("token"))
        if label is not None:
            pooled[label] = pooled.get(label, 0.0) + math.exp(logprob)
    if not pooled:
        return None
    floor = math.exp(smallest) if math.isfinite(smallest) else 0.0
    yes, no = pooled.get("yes", floor), pooled.get("no", floor)
    return yes / (yes + no) if yes + no > 0 else 0.5


def listwise_messages(
    query: str, passages: Sequence[str], instruction: str | None, max_words: int
) -> list[dict[str, str]]:
    """RankGPT's conversation for one window: each passage as ``[i] text`` (cut to
    ``max_words`` words), then the request for an order such as ``[2] > [1]``."""
    count = len(passages)
    messages = [
        {"role": "system", "content": _RANKGPT_SYSTEM},
        {
            "role": "user",
            "content": f"I will provide you with {count} passages, each indicated by number "
            f"identifier []. \nRank the passages based on their relevance to query: {query}.",
        },
        {"role": "assistant", "content": "Okay, please provide the passages."},
    ]
    for number, passage in enumerate(passages, 1):
        words = passage.split()
        text = " ".join(words[:max_words]) if len(words) > max_words else passage
        messages.append({"role": "user", "content": f"[{number}] {text}"})
        messages.append({"role": "assistant", "content": f"Received passage [{number}]."})
    task = f"{instruction}\n" if instruction else ""
    messages.append(
        {
            "role": "user",
            "content": f"{task}Search Query: {query}. \nRank the {count} passages above based on "
            "their relevance to the search query. The passages should be listed in descending "
            "order using identifiers. The most relevant passages should be listed first. The "
            "output format should be [] > [], e.g., [1] > [2]. Only respond with the ranking "
            "results, do not say any word or explain.",
        }
    )
    return messages


def permutation(answer: str, count: int) -> list[int]:
    """The 0-based order of ``count`` passages that ``answer`` gives, repaired.

    Every run of non-digits separates numbers; numbers outside ``1..count`` and repeats are
    dropped; the passages the answer does not name follow, in their first-stage order. A
    malformed, partial, truncated or empty answer therefore still yields a full order.
    """
    seen: set[int] = set()
    order: list[int] = []
    for piece in _NON_DIGITS.split(answer):
        if not piece or len(piece) > 6:
            continue
        index = int(piece) - 1
        if 0 <= index < count and index not in seen:
            seen.add(index)
            order.append(index)
    order += [index for index in range(count) if index not in seen]
    return order


def windows(count: int, size: int, step: int) -> Iterator[tuple[int, int]]:
    """RankGPT's sliding windows ``(start, end)`` over ``count`` items, from the bottom of the
    list to the top, each ``size`` long and ``step`` apart, so strong items bubble up."""
    end = count
    while True:
        start = max(end - size, 0)
        yield start, end
        if start == 0:
            return
        end -= step
