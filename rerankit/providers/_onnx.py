"""ONNX Runtime sessions and tokenisation for the local neural rerankers.

One job: turn texts into model inputs and run them. Sessions and tokenizers are loaded once per
process and shared by every client and call. Texts are tokenised without special tokens, cut to
fit, and only then given the model's special tokens, so a query is kept whole where it fits.
Batches are formed from items of similar length and padded to the longest item of their batch.
Inference runs in worker threads, one batch at a time per event loop (each batch already uses
every intra-op thread), so concurrent calls interleave batch by batch.

Importing this module imports onnxruntime, tokenizers and numpy; it is imported only when a
local neural model is first used.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

import anyio
import anyio.to_thread

from rerankit._errors import ConfigurationError
from rerankit._lifetimes import PerLoop, PerProcess
from rerankit.providers._onnx_config import MAX_THREADS_BY_DEFAULT, missing_extra

try:
    import numpy as np
    import numpy.typing as npt
    import onnxruntime as ort
    from tokenizers import Encoding, Tokenizer
except ImportError as exc:
    raise missing_extra(exc.name) from exc

__all__ = [
    "Session",
    "TextEncoder",
    "cached",
    "default_threads",
    "length_batches",
    "run_in_thread",
]

T = TypeVar("T")

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]

MIN_DOCUMENT_TOKENS = 16
"""A query longer than leaves this many document tokens in a pair is cut to leave them."""

_INTEGER_TYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32}
_KNOWN_INPUTS = ("input_ids", "attention_mask", "token_type_ids", "position_ids")


def default_threads() -> int:
    """Intra-op threads when none are configured: the CPUs this process may use, at most 8."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        available = os.cpu_count() or 1
    return max(1, min(available, MAX_THREADS_BY_DEFAULT))


# --------------------------------------------------------------------------- process cache


class _Loaded:
    """The models loaded in this process, and a lock per model being loaded."""

    __slots__ = ("loading", "lock", "models")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.models: dict[Hashable, object] = {}
        self.loading: dict[Hashable, threading.Lock] = {}


_LOADED: PerProcess[_Loaded] = PerProcess(_Loaded)
"""Per process: a forked child loads its own models (ONNX Runtime sessions and their thread
pools do not survive a fork) and never waits on a lock held by a thread of its parent."""


def cached(key: Hashable, load: Callable[[], T]) -> T:
    """The object loaded for ``key`` in this process, loading it once (other callers wait)."""
    loaded = _LOADED.get()
    with loaded.lock:
        if key in loaded.models:
            return cast(T, loaded.models[key])
        key_lock = loaded.loading.setdefault(key, threading.Lock())
    with key_lock:
        with loaded.lock:
            if key in loaded.models:
                return cast(T, loaded.models[key])
        value = load()
        with loaded.lock:
            loaded.models[key] = value
            loaded.loading.pop(key, None)
    return value


def cached_or_none(key: Hashable) -> object | None:
    """The object loaded for ``key``, or ``None`` when it is not loaded (never blocks on I/O)."""
    loaded = _LOADED.get()
    with loaded.lock:
        return loaded.models.get(key)


def clear_cache() -> None:
    """Forget every loaded model (calls already holding one keep it)."""
    loaded = _LOADED.get()
    with loaded.lock:
        loaded.models.clear()


# --------------------------------------------------------------------------- threads

_LIMITER: PerLoop[anyio.CapacityLimiter] = PerLoop(lambda: anyio.CapacityLimiter(1))
"""One batch in flight per event loop: a batch already keeps every intra-op thread busy."""


async def run_in_thread(function: Callable[..., T], *args: Any, inference: bool = False) -> T:
    """Run ``function(*args)`` in a worker thread; ``inference`` queues it behind other batches."""
    limiter = _LIMITER.get() if inference else None
    return await anyio.to_thread.run_sync(function, *args, limiter=limiter)


# --------------------------------------------------------------------------- sessions


class Session:
    """One ONNX Runtime session and how to feed it."""

    def __init__(self, path: Path, threads: int, spin_wait: bool = False) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Idle intra-op threads sleep instead of spinning: spinning threads take CPU from the
        # event loop, the tokenizer and other processes, and were slower whenever the CPUs
        # were shared. spin_wait=True can be faster on a machine left to inference alone.
        options.add_session_config_entry(
            "session.intra_op.allow_spinning", "1" if spin_wait else "0"
        )
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own, unexported exception types
            raise ConfigurationError(f"cannot load the ONNX model {path}: {exc}") from exc
        self.path = path
        self.threads = threads
        self._session = session
        self.inputs: dict[str, type[np.integer[Any]]] = {}
        for item in session.get_inputs():
            if item.name not in _KNOWN_INPUTS:
                raise ConfigurationError(
                    f"the ONNX model {path} takes an input {item.name!r}; rerankit feeds "
                    f"{', '.join(_KNOWN_INPUTS)}"
                )
            dtype = _INTEGER_TYPES.get(item.type)
            if dtype is None:
                raise ConfigurationError(
                    f"the ONNX model {path} wants {item.type} for {item.name!r}; "
                    "rerankit feeds int64 or int32 token ids"
                )
            self.inputs[item.name] = dtype
        if "input_ids" not in self.inputs:
            raise ConfigurationError(f"the ONNX model {path} has no input_ids input")
        self.outputs: dict[str, list[int | str | None]] = {
            item.name: list(item.shape) for item in session.get_outputs()
        }

    def output(self, preferred: Sequence[str], ranks: Sequence[int], what: str) -> str:
        """The first output named in ``preferred``, else the first output of one of ``ranks``."""
        for name in preferred:
            if name in self.outputs:
                return name
        for name, shape in self.outputs.items():
            if len(shape) in ranks and name != "logits":  # logits are never embeddings
                return name
        raise ConfigurationError(
            f"the ONNX model {self.path} has no output usable as {what} "
            f"(outputs: {', '.join(f'{n} {s}' for n, s in self.outputs.items())})"
        )

    def run(self, output: str, encodings: Sequence[Encoding], pad_id: int) -> npt.NDArray[Any]:
        """Pad ``encodings`` to the longest of them and run the model; returns ``output``."""
        width = max(len(encoding) for encoding in encodings)
        ids = np.full((len(encodings), width), pad_id, dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        types = np.zeros((len(encodings), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            length = len(encoding)
            ids[row, :length] = encoding.ids
            mask[row, :length] = 1
            types[row, :length] = encoding.type_ids
        arrays = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        feeds: dict[str, npt.NDArray[Any]] = {}
        for name, dtype in self.inputs.items():
            array = (
                np.tile(np.arange(width, dtype=np.int64), (len(encodings), 1))
                if name == "position_ids"
                else arrays[name]
            )
            feeds[name] = array if dtype is np.int64 else array.astype(dtype)
        try:
            result = self._session.run([output], feeds)[0]
        except Exception as exc:  # onnxruntime's own exception types
            raise ConfigurationError(f"the ONNX model {self.path} failed to run: {exc}") from exc
        return cast(npt.NDArray[Any], result)


def load_session(path: Path, threads: int, spin_wait: bool) -> Session:
    key = ("session", path, threads, spin_wait)
    return cached(key, lambda: Session(path, threads, spin_wait))


def length_batches(
    encodings: Sequence[Encoding], batch_size: int, max_tokens: int
) -> list[list[int]]:
    """Indexes of ``encodings`` in batches of similar length, so little padding is needed.

    A batch holds at most ``batch_size`` items and, padded to its longest item, at most
    ``max_tokens`` tokens (a longer item goes alone).
    """
    order = sorted(range(len(encodings)), key=lambda i: len(encodings[i]))
    batches: list[list[int]] = []
    batch: list[int] = []
    for index in order:
        width = len(encodings[index])  # the longest so far: lengths only grow
        if batch and (len(batch) >= batch_size or (len(batch) + 1) * width > max_tokens):
            batches.append(batch)
            batch = []
        batch.append(index)
    if batch:
        batches.append(batch)
    return batches


# --------------------------------------------------------------------------- tokenizers


class TextEncoder:
    """A ``tokenizers`` tokenizer that rerankit truncates itself, with no padding of its own."""

    def __init__(self, path: Path, pad_token_id: int | None) -> None:
        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises a bare Exception for bad files
            raise ConfigurationError(f"cannot load the tokenizer {path}: {exc}") from exc
        padding = tokenizer.padding
        pad_id = padding.get("pad_id") if padding else None
        for token in ("[PAD]", "<pad>"):
            if pad_id is None:
                pad_id = tokenizer.token_to_id(token)
        if pad_id is None:
            pad_id = pad_token_id if pad_token_id is not None else 0
        tokenizer.no_truncation()
        tokenizer.no_padding()
        self.path = path
        self.pad_id = int(pad_id)
        self.pair_special = tokenizer.num_special_tokens_to_add(True)
        self.single_special = tokenizer.num_special_tokens_to_add(False)
        self._tokenizer = tokenizer

    def pairs(
        self, query: str, documents: Sequence[str], max_length: int, document_tokens: int | None
    ) -> list[Encoding]:
        """(query, document) pairs of at most ``max_length`` tokens, special tokens included.

        Documents are cut first (to ``document_tokens`` when given, then to what the whole
        query leaves); the query is cut only when it would leave a document fewer than
        ``MIN_DOCUMENT_TOKENS`` tokens.
        """
        budget = max_length - self.pair_special
        if budget < 2:
            raise ConfigurationError(
                f"max_length={max_length} leaves no room for a query and a document"
            )
        tokenizer = self._tokenizer
        query_encoding = tokenizer.encode(query, add_special_tokens=False)
        queries = {len(query_encoding): query_encoding}
        reserve = min(MIN_DOCUMENT_TOKENS, budget // 2)
        pairs = []
        for document in tokenizer.encode_batch(list(documents), add_special_tokens=False):
            length = len(document)
            if document_tokens is not None and length > document_tokens:
                length = document_tokens
            query_length = len(query_encoding)
            if query_length + length > budget:
                length = min(length, max(reserve, budget - query_length))
                query_length = min(query_length, budget - length)
            if length < len(document):
                document.truncate(length)
            cut = queries.get(query_length)
            if cut is None:
                cut = queries[query_length] = tokenizer.encode(query, add_special_tokens=False)
                cut.truncate(query_length)
            pairs.append(tokenizer.post_process(cut, document, add_special_tokens=True))
        return pairs

    def singles(self, texts: Sequence[str], limits: Sequence[int]) -> list[Encoding]:
        """Each of ``texts`` cut to its limit of content tokens, then given special tokens."""
        tokenizer = self._tokenizer
        encoded = []
        for encoding, limit in zip(
            tokenizer.encode_batch(list(texts), add_special_tokens=False), limits, strict=True
        ):
            if len(encoding) > limit:
                encoding.truncate(limit)
            encoded.append(tokenizer.post_process(encoding, None, add_special_tokens=True))
        return encoded


def load_encoder(path: Path, pad_token_id: int | None) -> TextEncoder:
    return cached(("tokenizer", path, pad_token_id), lambda: TextEncoder(path, pad_token_id))
