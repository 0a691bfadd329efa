"""Planning requests within a model's limits, and turning answers into one ranking (pure).

``plan_requests`` chunks documents longer than the model's window into overlapping windows and
packs documents (or chunks) into batches that respect every declared limit. ``collect_batches``
maps each batch's answer back to the caller's documents, a document scoring as its best chunk.
``finalize_results`` validates, sorts (descending score, ties by ascending index), cuts to
``top_n`` and back-fills the caller's documents, once, for every provider.

``aplan_requests`` runs the planner inline for small inputs and on a worker thread for large
ones (``_offload``); the call's stages (``_stages``) do the same for the other two.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from operator import attrgetter

import msgspec

from rerankit._errors import ConfigurationError, ResponseValidationError
from rerankit._images import ImageText, image_count, request_bytes
from rerankit._offload import run_sized
from rerankit._tokens import TokenCounter, TokenEstimator
from rerankit._types import Document, RerankResult
from rerankit.providers._base import ModelCapabilities

__all__ = [
    "Plan",
    "aplan_requests",
    "collect_batches",
    "finalize_results",
    "plan_requests",
    "sort_key",
    "surely_one_request",
]

MAX_BYTES_PER_CHAR = 4
"""No tokenizer gives a character more tokens than its UTF-8 bytes, at most four: texts this
many times shorter than a limit are inside it without counting (ASCII texts: as long)."""

MIN_WINDOW = 8
"""The fewest tokens a chunk may hold; a query that leaves less room is a configuration error."""

ESTIMATOR_INLINE_CHARS = 32_768
"""Characters (query and texts) planned inline with the ``TokenEstimator``: at most ~8 ms
(chunking CJK into windows of ``MIN_WINDOW`` tokens, the slowest case, costs ~0.23 µs a
character); more is planned on a worker thread."""

COUNTER_INLINE_CHARS = 2_048
"""The same with any other ``TokenCounter``: a real tokenizer costs ~0.5-5 µs a character
(``tokenizers``, ASCII counting to CJK chunking)."""

RESULTS_INLINE = 8_192
"""Results collected or finalized inline: ~1 µs each at most; more go to a worker thread."""


class Plan(msgspec.Struct, kw_only=True):
    """What to send: ``texts`` (documents, or chunks of them) split into ``batches``.

    ``owners[i]`` is the document ``texts[i]`` belongs to (``None``: ``texts`` are the documents
    themselves). ``batches`` are ``(start, end)`` ranges over ``texts``.
    """

    texts: list[str]
    owners: list[int] | None
    batches: list[tuple[int, int]]

    @property
    def chunked(self) -> bool:
        return self.owners is not None


def plan_requests(
    query: str,
    texts: list[str],
    caps: ModelCapabilities,
    counter: TokenCounter,
    *,
    window: int | None = None,
    max_chunks_per_doc: int | None = None,
    model: str = "",
) -> Plan | None:
    """The requests needed for ``texts`` within ``caps``; ``None`` when one request of the
    documents as they are fits.

    ``window`` (the caller's ``max_tokens_per_doc``, when the provider cannot apply it) narrows
    the model's own window; ``max_chunks_per_doc`` keeps only each document's first chunks.
    """
    if surely_one_request(query, texts, caps, window):
        return None  # the common case, decided without counting anything
    window = _window(query, caps, counter, window, model)
    doc_tokens = _doc_tokens(texts, counter, window, caps)
    owners: list[int] | None = None
    if window is not None and doc_tokens is not None and max(doc_tokens, default=0) > window:
        texts, owners, doc_tokens = _chunk(texts, doc_tokens, counter, window, max_chunks_per_doc)
    batches = _batch(query, texts, doc_tokens, caps, counter)
    if owners is None and len(batches) <= 1:
        return None
    if caps.listwise:
        raise ConfigurationError(
            f"model {model!r} ranks documents against each other (listwise), so its scores "
            f"cannot be merged across requests, but these documents need {len(batches)} "
            "requests or chunking; pass fewer or shorter documents"
        )
    return Plan(texts=texts, owners=owners, batches=batches)


async def aplan_requests(
    query: str,
    texts: list[str],
    caps: ModelCapabilities,
    counter: TokenCounter,
    *,
    window: int | None = None,
    max_chunks_per_doc: int | None = None,
    model: str = "",
) -> Plan | None:
    """``plan_requests``, on a worker thread when counting or chunking the texts can take
    more than a few milliseconds (the common one-request case is decided inline)."""
    if surely_one_request(query, texts, caps, window):
        return None
    work = len(query) + sum(map(len, texts))
    limit = ESTIMATOR_INLINE_CHARS if type(counter) is TokenEstimator else COUNTER_INLINE_CHARS
    return await run_sized(
        work,
        limit,
        plan_requests,
        query,
        texts,
        caps,
        counter,
        window=window,
        max_chunks_per_doc=max_chunks_per_doc,
        model=model,
    )


def _window(
    query: str,
    caps: ModelCapabilities,
    counter: TokenCounter,
    window: int | None,
    model: str,
) -> int | None:
    """Tokens one document (or chunk) may hold: the tightest of the declared limits."""
    limits = [limit for limit in (caps.max_tokens_per_doc, window) if limit is not None]
    shared = [limit for limit in (caps.max_pair_tokens, caps.max_request_tokens) if limit]
    if shared:
        query_tokens = counter.count([query])[0]
        limits += [limit - query_tokens for limit in shared]
    if not limits:
        return None
    tightest = min(limits)
    if tightest < MIN_WINDOW:
        raise ConfigurationError(
            f"the query is too long for model {model!r}: it leaves {max(tightest, 0)} tokens "
            "for each document"
        )
    return tightest


def _doc_tokens(
    texts: list[str], counter: TokenCounter, window: int | None, caps: ModelCapabilities
) -> list[int] | None:
    """Token counts, or ``None`` when no limit needs them (checked cheaply first)."""
    if window is None and caps.max_request_tokens is None:
        return None
    if caps.max_request_tokens is None and window is not None and surely_within(texts, window):
        return None
    return counter.count(texts)


def surely_one_request(
    query: str, texts: list[str], caps: ModelCapabilities, window: int | None
) -> bool:
    """Whether one request of ``texts`` as they are keeps every limit, judged from their
    lengths alone: a token holds at least one UTF-8 byte, a character at most four (one in
    ASCII). False means "count to know", not "too long"."""
    if caps.max_documents is not None and len(texts) > caps.max_documents:
        return False
    images = caps.images.max_per_request if caps.images is not None else None
    if images is not None and len(texts) > images and image_count(texts) > images:
        return False
    doc_limit = caps.max_tokens_per_doc
    if window is not None and (doc_limit is None or window < doc_limit):
        doc_limit = window
    pair, request, size = caps.max_pair_tokens, caps.max_request_tokens, caps.max_request_bytes
    if pair is None and request is None and size is None:
        return doc_limit is None or surely_within(texts, doc_limit)
    per_char = 1 if query.isascii() and all(map(str.isascii, texts)) else MAX_BYTES_PER_CHAR
    longest = max(map(len, texts), default=0) * per_char
    query_most = len(query) * per_char
    if doc_limit is not None and longest > doc_limit:
        return False
    for shared in (pair, request):  # the query must leave room for a document (see _window)
        if shared is not None and shared - query_most < MIN_WINDOW:
            return False
    if pair is not None and query_most + longest > pair:
        return False
    if request is None and size is None:
        return True
    total = sum(map(len, texts)) * per_char
    if request is not None and query_most * len(texts) + total > request:
        return False
    if size is None:
        return True
    overhead = caps.request_byte_overhead + query_most
    images_bytes = request_bytes(texts) if caps.images is not None else 0  # others refuse them
    return overhead * len(texts) + total + images_bytes <= size


def surely_within(texts: list[str], tokens: int) -> bool:
    """Whether no text can have more than ``tokens`` tokens under any tokenizer, judged
    without counting: a token holds at least one UTF-8 byte, and a character takes at most
    four bytes (one in ASCII, which ``str.isascii`` knows without scanning)."""
    longest = max(map(len, texts), default=0)
    if longest * MAX_BYTES_PER_CHAR <= tokens:
        return True
    return longest <= tokens and all(map(str.isascii, texts))


def _chunk(
    texts: list[str],
    tokens: list[int],
    counter: TokenCounter,
    window: int,
    max_chunks: int | None,
) -> tuple[list[str], list[int], list[int]]:
    overlap = window // 8
    chunk_texts: list[str] = []
    owners: list[int] = []
    for index, (text, count) in enumerate(zip(texts, tokens, strict=True)):
        if count <= window or type(text) is ImageText:  # an image document is never split
            pieces = [text]
        else:
            spans = counter.windows(text, window, overlap)[:max_chunks]
            pieces = [text[start:end] for start, end in spans]
        chunk_texts.extend(pieces)
        owners.extend([index] * len(pieces))
    return chunk_texts, owners, counter.count(chunk_texts)


def _batch(
    query: str,
    texts: list[str],
    tokens: list[int] | None,
    caps: ModelCapabilities,
    counter: TokenCounter,
) -> list[tuple[int, int]]:
    """Greedy batches in input order within the count, image, token and byte budgets (an
    image counts its bytes as sent)."""
    count = len(texts)
    max_docs = caps.max_documents or count or 1
    token_budget = caps.max_request_tokens
    byte_budget = caps.max_request_bytes
    max_images = caps.images.max_per_request if caps.images is not None else None
    if max_images is not None and max_images < max_docs and image_count(texts) > max_images:
        return _image_batches(query, texts, tokens, caps, counter, max_images)
    if token_budget is None and byte_budget is None:
        return [(start, min(start + max_docs, count)) for start in range(0, count, max_docs)]
    query_tokens = counter.count([query])[0] if token_budget is not None else 0
    query_bytes = len(query.encode("utf-8")) + caps.request_byte_overhead
    batches: list[tuple[int, int]] = []
    start, used_tokens, used_bytes = 0, 0, 0
    for index, text in enumerate(texts):
        item_tokens = query_tokens + (tokens[index] if tokens is not None else 0)
        item_bytes = 0
        if byte_budget is not None:
            item_bytes = query_bytes + len(text.encode("utf-8"))
            if type(text) is ImageText:
                item_bytes += text.image.wire_bytes
        if byte_budget is not None and item_bytes > byte_budget:
            raise ConfigurationError(_too_large(index, text, byte_budget))
        full = (
            index - start >= max_docs
            or (token_budget is not None and used_tokens + item_tokens > token_budget)
            or (byte_budget is not None and used_bytes + item_bytes > byte_budget)
        )
        if full and index > start:
            batches.append((start, index))
            start, used_tokens, used_bytes = index, 0, 0
        used_tokens += item_tokens
        used_bytes += item_bytes
    if count > start:
        batches.append((start, count))
    return batches


def _too_large(index: int, text: str, budget: int) -> str:
    if type(text) is ImageText:
        return (
            f"document {index} with its image ({text.image.wire_bytes:,} bytes as sent) is "
            f"larger than the request budget of {budget:,} bytes; pass a smaller image"
        )
    return (
        f"document {index} alone is larger than the request budget of {budget:,} bytes; "
        "pass max_tokens_per_doc to split it"
    )


def _image_batches(
    query: str,
    texts: list[str],
    tokens: list[int] | None,
    caps: ModelCapabilities,
    counter: TokenCounter,
    max_images: int,
) -> list[tuple[int, int]]:
    """The batches of ``_batch``, each cut again so it holds at most ``max_images`` images."""
    free = msgspec.structs.replace(caps, images=None)
    batches: list[tuple[int, int]] = []
    for start, end in _batch(query, texts, tokens, free, counter):
        cut, images = start, 0
        for index in range(start, end):
            if type(texts[index]) is ImageText:
                if images == max_images:
                    batches.append((cut, index))
                    cut, images = index, 0
                images += 1
        batches.append((cut, end))
    return batches


def collect_batches(
    plan: Plan,
    answers: Sequence[Sequence[RerankResult]],
    *,
    provider: str,
    model: str,
) -> list[RerankResult]:
    """Each batch's results mapped to the caller's documents; a chunked document scores as its
    best chunk. A result whose index is outside its batch raises ``ResponseValidationError``;
    ``finalize_results`` then checks the merged list as it checks one answer."""
    owners = plan.owners
    merged: list[RerankResult] = []
    best: dict[int, RerankResult] = {}
    for (start, end), results in zip(plan.batches, answers, strict=True):
        size = end - start
        seen = bytearray(size) if owners is not None else None
        for result in results:
            index = getattr(result, "index", None)
            if type(index) is not int or not 0 <= index < size:
                raise _invalid(
                    provider, model, f"result index {index!r} is out of range 0..{size - 1}"
                )
            if owners is None:
                result.index = start + index
                merged.append(result)
                continue
            if seen is not None:
                if seen[index]:
                    raise _invalid(provider, model, f"chunk index {index} appears more than once")
                seen[index] = 1
            score = result.relevance_score
            if not isinstance(score, (int, float)) or score - score != 0.0:
                raise _invalid(provider, model, f"score {score!r} of index {index} is not finite")
            document = owners[start + index]
            kept = best.get(document)
            if kept is None or score > kept.relevance_score:
                result.index = document
                best[document] = result
    return merged if owners is None else list(best.values())


def sort_key(result: RerankResult) -> tuple[float, int]:
    """Descending score, then ascending index."""
    return (-result.relevance_score, result.index)


_score = attrgetter("relevance_score")


def finalize_results(
    results: Sequence[RerankResult],
    documents: Sequence[Document],
    *,
    top_n: int | None,
    return_documents: bool,
    provider: str,
    model: str,
    expect_all: bool = False,
    texts_only: bool = False,
) -> list[RerankResult]:
    """Validate, sort, cut and back-fill ``results`` for ``documents`` as the caller passed them
    (``texts_only``: every one of them is a str).

    Raises ``ResponseValidationError`` for a result that is not a ``RerankResult``, an index out
    of range or repeated, or a score that is not a finite number; with ``expect_all``, also when
    a document has no result.
    """
    ranked = _ranked_fast(results, len(documents), expect_all)
    if ranked is None:  # something is off: the careful pass names it, or puts it right
        ranked = _checked(results, len(documents), expect_all, provider, model)
        ranked.sort(key=_score, reverse=True)  # stable: ties stay in ascending index order
    if top_n is not None and top_n < len(ranked):
        del ranked[top_n:]
    if return_documents and texts_only:
        for result in ranked:
            result.document = {"text": documents[result.index]}
    elif return_documents:
        for result in ranked:
            doc = documents[result.index]
            result.document = {"text": doc} if isinstance(doc, str) else doc
    else:
        for result in ranked:
            result.document = None
    return ranked


_index = attrgetter("index")


def _ranked_fast(
    results: Sequence[RerankResult], count: int, expect_all: bool
) -> list[RerankResult] | None:
    """``results`` by descending score, ties by ascending index, when every one is well formed
    (else ``None``). One pass over the sorted results: cheaper than bulk checks for the usual
    few dozen results."""
    try:
        ranked = sorted(results, key=_score, reverse=True)
    except (AttributeError, TypeError):
        return None
    seen: set[int] = set()
    tied = False
    previous: float | None = None
    for result in ranked:
        index = result.index
        score = result.relevance_score
        if (
            type(result) is not RerankResult
            or type(index) is not int
            or type(score) is not float
            or not 0 <= index < count
            or index in seen
            or score - score != 0.0  # NaN or infinite
        ):
            return None
        seen.add(index)
        if score == previous:
            tied = True
        previous = score
    if expect_all and len(seen) != count:
        return None
    if tied:
        ranked.sort(key=_index)
        ranked.sort(key=_score, reverse=True)
    return ranked


def _checked(
    results: Sequence[RerankResult], count: int, expect_all: bool, provider: str, model: str
) -> list[RerankResult]:
    """``results`` in ascending index order, each checked; raises on the first problem."""
    if not isinstance(results, (list, tuple)):
        raise _invalid(provider, model, f"results is a {type(results).__name__}, not a list")
    slots: list[RerankResult | None] = [None] * count
    found = 0
    for position, result in enumerate(results):
        if not isinstance(result, RerankResult):
            raise _invalid(provider, model, f"result {position} is not a RerankResult: {result!r}")
        index = result.index
        if type(index) is not int or not 0 <= index < count:
            raise _invalid(
                provider, model, f"result index {index!r} is out of range 0..{count - 1}"
            )
        if slots[index] is not None:
            raise _invalid(provider, model, f"document index {index} appears more than once")
        score = result.relevance_score
        if type(score) is not float:
            if isinstance(score, bool) or not isinstance(score, (int, float)):
                raise _invalid(provider, model, f"score {score!r} of index {index} is not a number")
            result.relevance_score = score = float(score)
        if not math.isfinite(score):
            raise _invalid(provider, model, f"score {score!r} of index {index} is not finite")
        slots[index] = result
        found += 1
    if found != count and expect_all:
        raise _invalid(provider, model, f"no score for document index {slots.index(None)}")
    return [r for r in slots if r is not None]


def _invalid(provider: str, model: str, detail: str) -> ResponseValidationError:
    return ResponseValidationError(
        f"{provider} returned an invalid ranking for model {model!r}: {detail}",
        provider=provider,
        model=model,
    )
