"""The local neural rerankers: an ONNX cross-encoder and an ONNX bi-encoder.

``score()`` is what ``LocalProvider`` calls: it finds the model's files, loads the model once per
process (in a worker thread; concurrent first calls wait for one load) and scores the documents.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rerankit._errors import ConfigurationError
from rerankit._reporting import report
from rerankit._types import ScoreKind
from rerankit.providers._hub import HubSettings, fetch
from rerankit.providers._hub_files import parse_hub
from rerankit.providers._onnx import (
    FloatArray,
    cached,
    cached_or_none,
    default_threads,
    length_batches,
    load_encoder,
    load_session,
    run_in_thread,
)
from rerankit.providers._onnx_config import (
    Kind,
    ModelConfig,
    ModelFiles,
    NeuralOptions,
    convertible,
    find_files,
    model_directory,
    read_config,
)

__all__ = ["BiEncoder", "CrossEncoder", "load_model", "score"]


class CrossEncoder:
    """Scores each (query, document) pair with one forward pass.

    A model with one output scores with that logit; a model with two (not relevant, relevant)
    scores with their difference, so the sigmoid of the score is the softmax probability of
    "relevant". With ``activation="sigmoid"`` the score is that probability.
    """

    def __init__(
        self, files: ModelFiles, config: ModelConfig, options: NeuralOptions, where: str
    ) -> None:
        self.session = load_session(
            files.onnx, options.threads or default_threads(), options.spin_wait
        )
        self.encoder = load_encoder(files.tokenizer, config.pad_token_id)
        self.max_length = config.max_length("cross-encoder", options.max_length, where)
        self.batch_size = options.batch_size
        self.max_batch_tokens = options.max_batch_tokens
        self.output = self.session.output(("logits",), (2, 1), "relevance logits")
        shape = self.session.outputs[self.output]
        width = shape[1] if len(shape) == 2 else 1
        labels = width if isinstance(width, int) else config.num_labels  # the graph first
        if labels is not None and labels not in (1, 2):
            raise ConfigurationError(
                f"{where}: the model has {labels} output labels; a cross-encoder reranker has 1 "
                "(a relevance logit) or 2 (not relevant, relevant)"
            )
        activation = options.activation or config.activation or "sigmoid"
        self.sigmoid = activation == "sigmoid"
        self.score_kind: ScoreKind = "probability" if self.sigmoid else "logit"
        self.where = where

    async def score(
        self, query: str, documents: Sequence[str], document_tokens: int | None
    ) -> list[float]:
        pairs = await run_in_thread(
            self.encoder.pairs, query, documents, self.max_length, document_tokens
        )
        scores = np.empty(len(pairs), dtype=np.float64)
        for batch in length_batches(pairs, self.batch_size, self.max_batch_tokens):
            scores[batch] = await run_in_thread(
                self._run, [pairs[i] for i in batch], inference=True
            )
            report(len(batch))
        return scores.tolist()  # type: ignore[no-any-return]

    def _run(self, pairs: list[Any]) -> npt.NDArray[np.float64]:
        logits = self.session.run(self.output, pairs, self.encoder.pad_id).astype(np.float64)
        if logits.ndim == 2 and logits.shape[1] == 2:
            logits = logits[:, 1] - logits[:, 0]
        elif logits.ndim == 2 and logits.shape[1] == 1:
            logits = logits[:, 0]
        elif logits.ndim != 1:
            raise ConfigurationError(
                f"{self.where}: the model returned logits of shape {logits.shape}; expected "
                "(batch,), (batch, 1) or (batch, 2)"
            )
        if self.sigmoid:
            logits = 1.0 / (1.0 + np.exp(-logits))
        return logits


class EmbeddingCache:
    """A thread-safe LRU of unit-length embeddings, keyed by (text, token limit)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, int], FloatArray] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: tuple[str, int]) -> FloatArray | None:
        if not self.size:
            return None
        with self._lock:
            vector = self._items.get(key)
            if vector is not None:
                self._items.move_to_end(key)
            return vector

    def put(self, key: tuple[str, int], vector: FloatArray) -> None:
        if not self.size:
            return
        with self._lock:
            self._items[key] = vector
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


class BiEncoder:
    """Embeds the query and each document, and scores by cosine similarity (-1 to 1).

    Document embeddings are cached per text (``cache_size`` entries, least recently used
    first out), so documents seen before cost no inference.
    """

    score_kind: ScoreKind = "unknown"

    def __init__(
        self, files: ModelFiles, config: ModelConfig, options: NeuralOptions, where: str
    ) -> None:
        self.session = load_session(
            files.onnx, options.threads or default_threads(), options.spin_wait
        )
        self.encoder = load_encoder(files.tokenizer, config.pad_token_id)
        self.max_length = config.max_length("bi-encoder", options.max_length, where)
        self.limit = self.max_length - self.encoder.single_special
        if self.limit < 1:
            raise ConfigurationError(f"{where}: max_length={self.max_length} leaves no room")
        self.batch_size = options.batch_size
        self.max_batch_tokens = options.max_batch_tokens
        self.output = self.session.output(
            ("sentence_embedding", "last_hidden_state", "token_embeddings"), (3, 2), "embeddings"
        )
        self.pooled = len(self.session.outputs[self.output]) == 2
        self.pooling = options.pooling or config.pooling or "mean"
        self.query_prefix = options.query_prefix
        self.document_prefix = options.document_prefix
        self.cache = EmbeddingCache(options.cache_size)

    async def score(
        self, query: str, documents: Sequence[str], document_tokens: int | None
    ) -> list[float]:
        limit = self.limit if document_tokens is None else min(self.limit, document_tokens)
        keys = [(self.query_prefix + query, self.limit)]
        keys += [(self.document_prefix + document, limit) for document in documents]
        vectors = await self.embed(keys)
        scores = vectors[1:] @ vectors[0]
        return scores.astype(np.float64).tolist()  # type: ignore[no-any-return]

    async def embed(self, keys: Sequence[tuple[str, int]]) -> FloatArray:
        """Unit-length embeddings of (text, token limit) items, from the cache where possible."""
        found: dict[tuple[str, int], FloatArray] = {}
        missing: list[tuple[str, int]] = []
        for key in keys:
            if key not in found:
                vector = self.cache.get(key)
                if vector is None:
                    found[key] = _PENDING
                    missing.append(key)
                else:
                    found[key] = vector
        if missing:
            encodings = await run_in_thread(
                self.encoder.singles, [text for text, _ in missing], [n for _, n in missing]
            )
            for batch in length_batches(encodings, self.batch_size, self.max_batch_tokens):
                vectors = await run_in_thread(
                    self._run, [encodings[i] for i in batch], inference=True
                )
                for row, i in enumerate(batch):
                    found[missing[i]] = vectors[row]
                    self.cache.put(missing[i], vectors[row])
                report(len(batch))
        return np.stack([found[key] for key in keys])

    def _run(self, encodings: list[Any]) -> FloatArray:
        hidden = self.session.run(self.output, encodings, self.encoder.pad_id).astype(np.float32)
        if not self.pooled:
            mask = np.zeros(hidden.shape[:2], dtype=np.float32)
            for row, encoding in enumerate(encodings):
                mask[row, : len(encoding)] = 1.0
            if self.pooling == "cls":
                hidden = hidden[:, 0]
            elif self.pooling == "max":
                hidden = np.where(mask[:, :, None] > 0, hidden, -np.inf).max(axis=1)
            else:
                hidden = (hidden * mask[:, :, None]).sum(axis=1) / mask.sum(axis=1)[:, None]
        norms = np.linalg.norm(hidden, axis=1, keepdims=True)
        return np.ascontiguousarray(hidden / np.maximum(norms, 1e-12), dtype=np.float32)


_PENDING: FloatArray = np.zeros(0, dtype=np.float32)

_CLASSES: dict[Kind, type[CrossEncoder] | type[BiEncoder]] = {
    "cross-encoder": CrossEncoder,
    "bi-encoder": BiEncoder,
}


def load_model(
    kind: Kind, files: ModelFiles, options: NeuralOptions, where: str
) -> CrossEncoder | BiEncoder:
    """The loaded model for these files and options: loaded once per process, then shared."""
    return cached(
        ("model", kind, files, options),
        lambda: _CLASSES[kind](files, read_config(files, where), options, where),
    )


async def locate(kind: Kind, source: str, options: NeuralOptions, where: str) -> ModelFiles:
    """The files of the model ``source`` names; a Hub model is fetched once per process, in a
    worker thread (the download, or the cache lookup, is blocking I/O)."""
    hub = parse_hub(source)
    if hub is None:
        directory, onnx_file = model_directory(source, options.onnx_file, where)
        if options.quantized or not convertible(directory, onnx_file):
            return find_files(source, options.onnx_file, where, quantized=options.quantized)
        return await _once(("converted", directory), load_converted, directory, where)
    if hub.kind is not None and hub.kind != kind:
        raise ConfigurationError(
            f"{where}: {source} is a {hub.kind} model: use local/{hub.kind}:{source}"
        )
    onnx_file = options.onnx_file or (None if options.quantized else hub.onnx_file)
    settings = HubSettings.from_env()
    key = ("hub", hub, kind, onnx_file, options.quantized, settings.cache_dir, settings.endpoint)
    return await _once(key, fetch, hub, kind, onnx_file, options.quantized, where)


async def _once(key: Hashable, load: Callable[..., ModelFiles], *args: Any) -> ModelFiles:
    """``load(*args)``, run once per process for ``key``, in a worker thread."""
    files = cached_or_none(key)
    if files is None:
        files = await run_in_thread(cached, key, lambda: load(*args))
    assert isinstance(files, ModelFiles)
    return files


def load_converted(directory: Path, where: str) -> ModelFiles:
    """The files of the ONNX model converted from ``directory``'s weights (blocking)."""
    from rerankit.providers._convert import converted_directory

    return find_files(str(converted_directory(directory, where)), None, where)


async def score(
    kind: Kind,
    source: str,
    options: NeuralOptions,
    query: str,
    documents: Sequence[str],
    document_tokens: int | None,
    where: str,
) -> tuple[list[float], ScoreKind]:
    """Scores of ``documents`` for ``query`` with the model ``source`` names, and their kind."""
    files = await locate(kind, source, options, where)
    model = cached_or_none(("model", kind, files, options))
    if model is None:
        model = await run_in_thread(load_model, kind, files, options, where)
    assert isinstance(model, (CrossEncoder, BiEncoder))
    scores = await model.score(query, documents, document_tokens)
    return scores, model.score_kind
