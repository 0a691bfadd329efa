"""Converting a model directory's safetensors weights into an ONNX model directory.

``convert_directory`` builds the graph (``_bert_graph``), checks its output against a numpy
forward pass of the same weights, and writes the ONNX file with the tokenizer and config files
beside it, into a temporary directory that is renamed into place only when complete.
``converted_directory`` does that once, into rerankit's own cache (``RERANKIT_CACHE_DIR``, else
``$XDG_CACHE_HOME/rerankit``, else ``~/.cache/rerankit``), never beside the weights.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

from rerankit._errors import ConfigurationError
from rerankit._settings import cache_home
from rerankit.providers._hub_files import AUX_FILES

__all__ = ["convert_directory", "converted_directory"]

CONVERTER_VERSION = "2"
"""Part of each cache key: a change to the graph builder gives new converted models."""
EXTERNAL_DATA_BYTES = 1_500_000_000
"""Weights past this size go to ``model.onnx_data`` (an ONNX file holds at most 2 GB)."""
TOLERANCE = 1e-3


def converted_directory(source: Path, where: str) -> Path:
    """The ONNX directory converted from ``source`` (with ``model.safetensors``), converting it
    into the cache unless already there (blocking)."""
    weights = source / "model.safetensors"
    try:
        stat = weights.stat()
    except OSError as exc:
        raise ConfigurationError(f"{where}: cannot read {weights}: {exc}") from exc
    key = f"{weights.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{CONVERTER_VERSION}"
    target = cache_home() / "converted" / hashlib.sha256(key.encode()).hexdigest()[:32]
    if not (target / "model.onnx").is_file():
        convert_directory(source, target, where)
    return target


def convert_directory(source: Path, target: Path, where: str) -> Path:
    """Write ``target``: an ONNX model directory built from ``source``'s weights.

    The directory appears complete or not at all; an existing ``target`` is kept.
    """
    from rerankit.providers import _bert_graph as bert

    config = _read_json(source / "config.json", where)
    arch = bert.Architecture.from_config(config, where)
    weights = bert.read_safetensors(source / "model.safetensors")
    if "embeddings.word_embeddings.weight" not in weights:
        raise ConfigurationError(
            f"{where}: {source / 'model.safetensors'} does not hold BERT-family encoder weights"
        )
    model = bert.build_graph(weights, arch)
    size = sum(w.nbytes for w in weights.values())
    if size <= EXTERNAL_DATA_BYTES:  # a larger model is checked by running it, below
        bert.check_model(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".converting-", dir=target.parent))
    try:
        _save(model, staging / "model.onnx", size)
        _check_outputs(staging / "model.onnx", weights, arch, where)
        for name in AUX_FILES:
            if (source / name).is_file():
                (staging / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source / name, staging / name)
        try:
            staging.rename(target)
        except OSError:  # converted meanwhile by another process: keep theirs
            if not (target / "model.onnx").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _save(model: object, path: Path, size: int) -> None:
    import onnx

    if size > EXTERNAL_DATA_BYTES:
        onnx.save_model(
            model,  # type: ignore[arg-type]
            str(path),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location="model.onnx_data",
        )
    else:
        onnx.save_model(model, str(path))  # type: ignore[arg-type]


def _check_outputs(path: Path, weights: dict[str, object], arch: object, where: str) -> None:
    """Compare the ONNX model with the numpy forward pass on a small random batch."""
    import numpy as np
    import onnxruntime as ort

    from rerankit.providers import _bert_graph as bert

    assert isinstance(arch, bert.Architecture)
    vocab = weights["embeddings.word_embeddings.weight"].shape[0]  # type: ignore[attr-defined]
    rng = np.random.default_rng(0)
    ids = rng.integers(5, vocab, size=(2, 9)).astype(np.int64)
    mask = np.ones_like(ids)
    mask[1, 6:] = 0
    ids[1, 6:] = arch.pad_id
    types = np.zeros_like(ids)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    wanted = {item.name for item in session.get_inputs()}
    got = session.run(None, {k: v for k, v in feeds.items() if k in wanted})[0]
    reference = bert.forward(weights, arch, ids, mask, types)
    if reference.ndim == 3:  # compare the unpadded positions only
        got, reference = got[mask == 1], reference[mask == 1]
    error = float(np.max(np.abs(got - reference)))
    if not error <= TOLERANCE * max(1.0, float(np.max(np.abs(reference)))):
        raise ConfigurationError(
            f"{where}: the converted ONNX model differs from the reference forward pass "
            f"(max difference {error:.3g}); it was not kept"
        )


def _read_json(path: Path, where: str) -> dict[str, object]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"{where}: cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigurationError(f"{where}: {path} is not a JSON object")
    return data
