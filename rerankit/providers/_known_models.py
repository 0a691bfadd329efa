"""Recommended local models with ONNX files on the Hugging Face Hub, by short name.

``local/cross-encoder:ms-marco-MiniLM-L-6-v2`` is the repo, revision and file listed here. Each
entry was checked against the repo's file listing on the Hub (``source``); ``unverified`` says
what was not. docs/local.md shows this table (scripts/gen_model_docs.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rerankit.providers._onnx_config import Kind

__all__ = ["KNOWN_MODELS", "KnownModel", "known_model"]


@dataclass(frozen=True)
class KnownModel:
    """One recommended model: where it is on the Hub and what it is."""

    name: str
    kind: Kind
    repo_id: str
    revision: str | None
    """A commit (the files below were listed at it), or ``None`` for the default branch."""
    onnx_file: str
    languages: str
    max_length: int
    size_mb: int
    """The fp32 ONNX file, in megabytes, as the Hub lists it."""
    licence: str
    source: str
    """The Hub page the file listing and licence were read from."""
    unverified: str = ""
    """What the listing did not show, if anything."""


_HF = "https://huggingface.co"

KNOWN_MODELS: tuple[KnownModel, ...] = (
    KnownModel(
        name="ms-marco-MiniLM-L-6-v2",
        kind="cross-encoder",
        repo_id="Xenova/ms-marco-MiniLM-L-6-v2",
        revision="fec3517fe1016cfeee39338ef98ba76fc449dbcc",
        onnx_file="onnx/model.onnx",
        languages="en",
        max_length=512,
        size_mb=91,
        licence="Apache-2.0 (of cross-encoder/ms-marco-MiniLM-L6-v2, the weights exported)",
        source=f"{_HF}/Xenova/ms-marco-MiniLM-L-6-v2/tree/fec3517fe1016cfeee39338ef98ba76fc449dbcc/onnx",
        unverified="the repo's own licence tag and its root files (tokenizer.json, config.json)",
    ),
    KnownModel(
        name="ms-marco-MiniLM-L-12-v2",
        kind="cross-encoder",
        repo_id="Xenova/ms-marco-MiniLM-L-12-v2",
        revision="e04b920da17733eae4f09d5a9395a8b15981a77e",
        onnx_file="onnx/model.onnx",
        languages="en",
        max_length=512,
        size_mb=134,
        licence="Apache-2.0 (of cross-encoder/ms-marco-MiniLM-L12-v2, the weights exported)",
        source=f"{_HF}/Xenova/ms-marco-MiniLM-L-12-v2/tree/e04b920da17733eae4f09d5a9395a8b15981a77e/onnx",
        unverified="the repo's own licence tag and its root files (tokenizer.json, config.json)",
    ),
    KnownModel(
        name="bge-reranker-base",
        kind="cross-encoder",
        repo_id="BAAI/bge-reranker-base",
        revision="d27e7d37aa3bd7bf26cad7612c93bee9b97f8193",
        onnx_file="onnx/model.onnx",
        languages="en, zh",
        max_length=512,
        size_mb=1110,
        licence="MIT",
        source=f"{_HF}/BAAI/bge-reranker-base/tree/d27e7d37aa3bd7bf26cad7612c93bee9b97f8193",
    ),
    KnownModel(
        name="mxbai-rerank-xsmall-v1",
        kind="cross-encoder",
        repo_id="mixedbread-ai/mxbai-rerank-xsmall-v1",
        revision="d1ba0a474aeed7c9fa96c3f57b128277580c5fae",
        onnx_file="onnx/model.onnx",
        languages="en",
        max_length=512,
        size_mb=284,
        licence="Apache-2.0",
        source=f"{_HF}/mixedbread-ai/mxbai-rerank-xsmall-v1/tree/d1ba0a474aeed7c9fa96c3f57b128277580c5fae/onnx",
        unverified="tokenizer.json at this commit (listed at the repo's refs/pr/1)",
    ),
    KnownModel(
        name="jina-reranker-v1-turbo-en",
        kind="cross-encoder",
        repo_id="jinaai/jina-reranker-v1-turbo-en",
        revision="5ee87fc5b391be5f22dfe3b63503e8b81fdcd12c",
        onnx_file="onnx/model.onnx",
        languages="en",
        max_length=8192,
        size_mb=151,
        licence="Apache-2.0",
        source=f"{_HF}/jinaai/jina-reranker-v1-turbo-en/tree/5ee87fc5b391be5f22dfe3b63503e8b81fdcd12c",
        unverified="the ONNX file's inputs (Jina's own BERT variant)",
    ),
    KnownModel(
        name="jina-reranker-v2-base-multilingual",
        kind="cross-encoder",
        repo_id="jinaai/jina-reranker-v2-base-multilingual",
        revision="6371035883584acb0584c34dbaa9350e4752b8d2",
        onnx_file="onnx/model.onnx",
        languages="multilingual",
        max_length=1024,
        size_mb=1110,
        licence="CC-BY-NC-4.0 (non-commercial)",
        source=f"{_HF}/jinaai/jina-reranker-v2-base-multilingual/tree/6371035883584acb0584c34dbaa9350e4752b8d2/onnx",
        unverified="the maximum length (from the model card) and the ONNX file's inputs",
    ),
    KnownModel(
        name="all-MiniLM-L6-v2",
        kind="bi-encoder",
        repo_id="sentence-transformers/all-MiniLM-L6-v2",
        revision=None,
        onnx_file="onnx/model.onnx",
        languages="en",
        max_length=256,
        size_mb=90,
        licence="Apache-2.0",
        source=f"{_HF}/sentence-transformers/all-MiniLM-L6-v2/tree/main/onnx",
        unverified="a pinned commit (the listing gave the short hash d83dd37 only)",
    ),
    KnownModel(
        name="bge-small-en-v1.5",
        kind="bi-encoder",
        repo_id="BAAI/bge-small-en-v1.5",
        revision=None,
        onnx_file="onnx/model.onnx",
        languages="en",
        max_length=512,
        size_mb=133,
        licence="MIT",
        source=f"{_HF}/BAAI/bge-small-en-v1.5/tree/main",
        unverified="a pinned commit (the listing gave the short hash 5c38ec7 only)",
    ),
)

_BY_NAME = {model.name.lower(): model for model in KNOWN_MODELS}


def known_model(name: str) -> KnownModel | None:
    """The recommended model called ``name`` (case-insensitive), if any."""
    return _BY_NAME.get(name.lower())
