"""local/cross-encoder: loading, model strings, batching, truncation, scores, sharing, errors.

Every model here is a tiny BERT cross-encoder with random weights, built by ``test_local_bert``
(real architecture, 64 positions, a WordPiece vocabulary of ~90 words).
"""

from __future__ import annotations

import asyncio
import io
import json
import math
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

import rerankit
from rerankit._reporting import reporting

for _module in ("numpy", "onnx", "onnxruntime", "tokenizers"):  # the `test` extra has them
    pytest.importorskip(_module)

from rerankit.providers import _onnx, _onnx_models  # noqa: E402
from rerankit.providers._onnx_config import check_options, find_files  # noqa: E402
from tests.test_local_bert import (  # noqa: E402
    VOCAB,
    bert_numpy,
    np,
    tiny_bert_dir,
    tiny_tokenizer,
    tiny_weights,
)

QUERY = "how do i reset my password"
DOCS = [
    "click reset password on the login page",
    "the weather is cold and rain",
    "bake bread in a hot oven",
    "open settings and click password then reset",
    "",
]
LONG_DOC = " ".join(["one two three four five six seven eight nine ten"] * 30)


@pytest.fixture(autouse=True)
def _fresh_models() -> Iterator[None]:
    _onnx.clear_cache()
    yield
    _onnx.clear_cache()


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    tiny_bert_dir(tmp_path / "tiny")
    return tmp_path / "tiny"


def reference_logits(weights: Any, query: str, docs: list[str], cut: int | None = None) -> Any:
    """Logits of each (query, doc) pair from the numpy model, tokenised by hand."""
    tokenizer = tiny_tokenizer()
    q = tokenizer.encode(query, add_special_tokens=False).ids
    out = []
    for doc in docs:
        d = tokenizer.encode(doc, add_special_tokens=False).ids[:cut]
        ids = [VOCAB.index("[CLS]"), *q, VOCAB.index("[SEP]"), *d, VOCAB.index("[SEP]")]
        types = [0] * (len(q) + 2) + [1] * (len(d) + 1)
        row = np.array([ids], np.int64)
        out.append(bert_numpy(weights, row, np.ones_like(row), np.array([types]), heads=4)[0])
    return np.array(out)


def scores_by_index(response: rerankit.RerankResponse) -> list[float]:
    return [r.relevance_score for r in sorted(response.results, key=lambda r: r.index)]


class Recorder:
    """Wraps an onnxruntime session: records the shape, ids and thread of every run."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.runs: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.session, name)

    def run(self, outputs: Any, feeds: dict[str, Any]) -> Any:
        self.runs.append({**feeds, "thread": threading.get_ident()})
        return self.session.run(outputs, feeds)


def record(kind: str, directory: Path, **options: Any) -> Recorder:
    """Load the model the way a call would, and record its session's runs."""
    files = find_files(str(directory), options.get("onnx_file"), "test")
    model = _onnx_models.load_model(kind, files, check_options(options, "test"), "test")  # type: ignore[arg-type]
    recorder = Recorder(model.session._session)
    model.session._session = recorder
    return recorder


# --------------------------------------------------------------------------- scores


def test_reranks_through_the_same_call_with_probabilities(model_dir: Path) -> None:
    weights = tiny_weights()  # the weights of model_dir
    response = rerankit.rerank(f"local/cross-encoder:{model_dir}", QUERY, DOCS, top_n=3)
    assert response.provider == "local"
    assert response.score_kind == "probability"
    assert len(response.results) == 3
    logits = reference_logits(weights, QUERY, DOCS)[:, 0]
    expected = 1 / (1 + np.exp(-logits))
    order = sorted(range(len(DOCS)), key=lambda i: -expected[i])[:3]
    assert [r.index for r in response.results] == order
    for result in response.results:
        assert result.relevance_score == pytest.approx(expected[result.index], abs=1e-5)
        assert result.document == {"text": DOCS[result.index]}


def test_activation_none_gives_raw_logits(model_dir: Path) -> None:
    weights = tiny_weights()
    response = rerankit.rerank(f"local/cross-encoder:{model_dir}", QUERY, DOCS, activation="none")
    assert response.score_kind == "logit"
    logits = reference_logits(weights, QUERY, DOCS)[:, 0]
    assert scores_by_index(response) == pytest.approx(list(logits), abs=1e-4)


def test_config_identity_activation_means_logits_by_default(tmp_path: Path) -> None:
    st = {"sentence_transformers": {"activation_fn": "torch.nn.modules.linear.Identity"}}
    tiny_bert_dir(tmp_path, config=st)
    response = rerankit.rerank(f"local/cross-encoder:{tmp_path}", QUERY, DOCS)
    assert response.score_kind == "logit"
    forced = rerankit.rerank(f"local/cross-encoder:{tmp_path}", QUERY, DOCS, activation="sigmoid")
    assert forced.score_kind == "probability"
    assert scores_by_index(forced) == pytest.approx(
        [1 / (1 + math.exp(-s)) for s in scores_by_index(response)]
    )


def test_two_label_models_score_the_relevant_label(tmp_path: Path) -> None:
    weights = tiny_bert_dir(tmp_path, num_labels=2)
    response = rerankit.rerank(f"local/cross-encoder:{tmp_path}", QUERY, DOCS)
    logits = reference_logits(weights, QUERY, DOCS)
    softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert scores_by_index(response) == pytest.approx(list(softmax[:, 1]), abs=1e-5)


def test_models_with_more_labels_are_refused(tmp_path: Path) -> None:
    tiny_bert_dir(tmp_path, num_labels=3)
    with pytest.raises(rerankit.ConfigurationError, match="3 output labels"):
        rerankit.rerank(f"local/cross-encoder:{tmp_path}", QUERY, DOCS)


# --------------------------------------------------------------------------- batching


def test_batches_are_padded_to_their_longest_item(model_dir: Path) -> None:
    docs = ["one", "one two three four five six", "one two", "one two three", "a", "bread"]
    recorder = record("cross-encoder", model_dir, batch_size=2)
    batched = rerankit.rerank(f"local/cross-encoder:{model_dir}", "help", docs, batch_size=2)
    assert len(recorder.runs) == 3
    for run in recorder.runs:
        lengths = run["attention_mask"].sum(axis=1)
        assert run["input_ids"].shape[1] == lengths.max()  # padded to the longest in the batch
        assert run["token_type_ids"].shape == run["input_ids"].shape
    widths = [run["input_ids"].shape[1] for run in recorder.runs]
    assert widths == sorted(widths)  # items of similar length share a batch
    one_by_one = rerankit.rerank(f"local/cross-encoder:{model_dir}", "help", docs, batch_size=1)
    all_at_once = rerankit.rerank(f"local/cross-encoder:{model_dir}", "help", docs, batch_size=64)
    assert scores_by_index(batched) == pytest.approx(scores_by_index(one_by_one), abs=1e-6)
    assert scores_by_index(all_at_once) == pytest.approx(scores_by_index(one_by_one), abs=1e-6)


def test_batches_hold_at_most_max_batch_tokens(model_dir: Path) -> None:
    docs = [" ".join(["word"] * n) for n in (1, 2, 3, 4, 9, 20, 40, 2, 1)]
    recorder = record("cross-encoder", model_dir, max_batch_tokens=30)
    capped = rerankit.rerank(f"local/cross-encoder:{model_dir}", "help", docs, max_batch_tokens=30)
    shapes = [run["input_ids"].shape for run in recorder.runs]
    assert all(rows * width <= 30 or rows == 1 for rows, width in shapes)
    assert sum(rows for rows, _ in shapes) == len(docs)
    assert shapes[-1] == (1, 44)  # 1 + 40 + 3 special tokens: longer than the budget, alone
    free = rerankit.rerank(f"local/cross-encoder:{model_dir}", "help", docs)
    assert scores_by_index(capped) == pytest.approx(scores_by_index(free), abs=1e-6)


def test_length_batches() -> None:
    encodings = [[0] * n for n in (5, 1, 3, 8, 2, 2)]
    assert _onnx.length_batches(encodings, 2, 1000) == [[1, 4], [5, 2], [0, 3]]  # type: ignore[arg-type]
    assert _onnx.length_batches(encodings, 10, 6) == [[1, 4, 5], [2], [0], [3]]  # type: ignore[arg-type]
    assert _onnx.length_batches([], 10, 6) == []


def test_inference_runs_off_the_event_loop(model_dir: Path) -> None:
    recorder = record("cross-encoder", model_dir)

    async def main() -> int:
        await rerankit.arerank(f"local/cross-encoder:{model_dir}", QUERY, DOCS)
        return threading.get_ident()

    loop_thread = anyio.run(main)
    assert recorder.runs
    assert all(run["thread"] != loop_thread for run in recorder.runs)


# --------------------------------------------------------------------------- truncation


def test_long_documents_are_cut_to_the_model_length_keeping_the_query(model_dir: Path) -> None:
    weights = tiny_weights()
    recorder = record("cross-encoder", model_dir)
    response = rerankit.rerank(
        f"local/cross-encoder:{model_dir}", QUERY, [LONG_DOC, "bread"], activation="none"
    )
    assert recorder.runs[-1]["input_ids"].shape[1] == 64  # the model's 64 positions
    tokenizer = tiny_tokenizer()
    query_ids = tokenizer.encode(QUERY, add_special_tokens=False).ids
    row = recorder.runs[-1]["input_ids"][-1]
    assert list(row[1 : 1 + len(query_ids)]) == query_ids  # the whole query, then the document
    kept = 64 - 3 - len(query_ids)
    expected = reference_logits(weights, QUERY, [LONG_DOC], cut=kept)[0, 0]
    assert scores_by_index(response)[0] == pytest.approx(expected, abs=1e-4)


def test_pair_truncation_rules(tmp_path: Path) -> None:
    tiny_tokenizer().save(str(tmp_path / "tokenizer.json"))
    encoder = _onnx.TextEncoder(tmp_path / "tokenizer.json", None)
    assert encoder.pair_special == 3
    short_query = "reset password"
    long_query = " ".join(["bread"] * 100)
    doc = " ".join(["word"] * 100)

    def lengths(query: str, max_length: int, doc_tokens: int | None = None) -> tuple[int, int]:
        (pair,) = encoder.pairs(query, [doc], max_length, doc_tokens)
        assert len(pair) <= max_length
        return pair.type_ids.count(0) - 2, pair.type_ids.count(1) - 1  # query, document

    assert lengths(short_query, 32) == (2, 27)  # the query whole, the document cut
    assert lengths(short_query, 32, doc_tokens=5) == (2, 5)  # max_tokens_per_doc
    assert lengths(long_query, 64) == (45, 16)  # a query that does not fit leaves 16 tokens
    assert lengths(long_query, 12) == (5, 4)  # ... or half of a small budget
    assert lengths(short_query, 500) == (2, 100)  # nothing to cut
    (empty,) = encoder.pairs(short_query, [""], 32, None)
    assert empty.tokens == ["[CLS]", "reset", "password", "[SEP]", "[SEP]"]


def test_max_length_and_max_tokens_per_doc_options(model_dir: Path) -> None:
    recorder = record("cross-encoder", model_dir, max_length=16)
    rerankit.rerank(f"local/cross-encoder:{model_dir}", QUERY, [LONG_DOC], max_length=16)
    assert recorder.runs[-1]["input_ids"].shape == (1, 16)
    recorder = record("cross-encoder", model_dir)
    rerankit.rerank(f"local/cross-encoder:{model_dir}", QUERY, [LONG_DOC], max_tokens_per_doc=4)
    assert recorder.runs[-1]["input_ids"].shape == (1, 3 + 6 + 4)
    with pytest.raises(rerankit.ConfigurationError, match="more than the 64 positions"):
        rerankit.rerank(f"local/cross-encoder:{model_dir}", QUERY, DOCS, max_length=65)


# --------------------------------------------------------------------------- model strings


def test_model_directory_layouts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tiny_bert_dir(tmp_path / "optimum", layout="onnx/model.onnx")
    tiny_bert_dir(tmp_path / "flat")
    tiny_bert_dir(tmp_path / "variants", layout="onnx/model_quantized.onnx")
    expected = scores_by_index(rerankit.rerank(f"local/cross-encoder:{tmp_path}/flat", QUERY, DOCS))
    monkeypatch.chdir(tmp_path)
    for model, options in [
        (f"cross-encoder:{tmp_path}/optimum", {}),
        (f"cross-encoder:{tmp_path}/flat/model.onnx", {}),
        (f"cross-encoder:{tmp_path}/variants/onnx/model_quantized.onnx", {}),
        (f"cross-encoder:{tmp_path}/variants", {"onnx_file": "onnx/model_quantized.onnx"}),
        ("cross-encoder:flat", {}),  # relative to the working directory
    ]:
        response = rerankit.rerank(f"local/{model}", QUERY, DOCS, **options)
        assert scores_by_index(response) == pytest.approx(expected, abs=1e-6), model


def test_models_shipped_in_a_python_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "site" / "tiny_reranker_model"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    tiny_bert_dir(package / "model")
    tiny_bert_dir(package / "variants" / "small", seed=3)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    direct = rerankit.rerank(f"local/cross-encoder:{package}/model", QUERY, DOCS)
    shipped = rerankit.rerank("local/cross-encoder:pkg:tiny_reranker_model", QUERY, DOCS)
    assert scores_by_index(shipped) == scores_by_index(direct)
    other = rerankit.rerank(
        "local/cross-encoder:pkg:tiny_reranker_model/variants/small", QUERY, DOCS
    )
    assert scores_by_index(other) != scores_by_index(direct)
    with pytest.raises(
        rerankit.ConfigurationError, match="no installed Python package 'no_such_model_pkg'"
    ):
        rerankit.rerank("local/cross-encoder:pkg:no_such_model_pkg", QUERY, DOCS)
    with pytest.raises(rerankit.ConfigurationError, match="not a Python package name"):
        rerankit.rerank("local/cross-encoder:pkg:../etc", QUERY, DOCS)


@pytest.mark.anyio
async def test_named_models_from_the_client_configuration(model_dir: Path) -> None:
    models = {
        "tiny": f"cross-encoder:{model_dir}",
        "tiny-raw": {"model": f"cross-encoder:{model_dir}", "activation": "none"},
    }
    async with rerankit.AsyncClient(providers={"local": {"options": {"models": models}}}) as client:
        plain = await client.rerank("local/tiny", QUERY, DOCS)
        raw = await client.rerank("local/tiny-raw", QUERY, DOCS)
        overridden = await client.rerank("local/tiny-raw", QUERY, DOCS, activation="sigmoid")
        bm25 = await client.rerank("local/bm25", QUERY, DOCS)
        with pytest.raises(rerankit.ConfigurationError, match="available: bm25, .*tiny, tiny-raw"):
            await client.rerank("local/tinyy", QUERY, DOCS)
    assert plain.score_kind == overridden.score_kind == "probability"
    assert raw.score_kind == "logit"
    assert scores_by_index(overridden) == pytest.approx(scores_by_index(plain))
    assert bm25.results[0].index in (0, 3)
    for bad, message in [
        ({"x": 3}, "give a model string"),
        ({"x": "bm25"}, "expected 'cross-encoder:<directory>'"),
        ({"x": {"model": f"cross-encoder:{model_dir}", "k3": 1}}, r"unknown options \['k3'\]"),
    ]:
        with pytest.raises(rerankit.ConfigurationError, match=message):
            await rerankit.arerank("local/x", QUERY, DOCS, models=bad)
    with pytest.raises(rerankit.ConfigurationError, match="models must be a dict"):
        await rerankit.arerank("local/x", QUERY, DOCS, models=["x"])


# --------------------------------------------------------------------------- errors


def test_missing_or_broken_models_explain_what_to_do(tmp_path: Path) -> None:
    def fails(model: str, match: str, **options: Any) -> None:
        with pytest.raises(rerankit.ConfigurationError, match=match):
            rerankit.rerank(f"local/{model}", QUERY, DOCS, **options)

    fails(f"cross-encoder:{tmp_path}/absent", "does not exist. Put the model there")
    fails(f"cross-encoder:{tmp_path}", "no ONNX model in .*model.onnx or onnx/model.onnx")
    fails(f"cross-encoder:{tmp_path}", "name a Hugging Face Hub model .* or export one")
    (tmp_path / "model.onnx").write_bytes(b"not an onnx file")
    fails(f"cross-encoder:{tmp_path}", "no tokenizer.json in")
    tiny_tokenizer().save(str(tmp_path / "tokenizer.json"))
    fails(f"cross-encoder:{tmp_path}", "cannot load the ONNX model")
    fails(f"cross-encoder:{tmp_path}", "onnx_file 'x.onnx' is not a file", onnx_file="x.onnx")
    tiny_bert_dir(tmp_path / "ok")
    (tmp_path / "ok" / "config.json").write_text("[1]")
    fails(f"cross-encoder:{tmp_path}/ok", "config.json is not a JSON object")
    (tmp_path / "ok" / "config.json").write_text("{")
    fails(f"cross-encoder:{tmp_path}/ok", "cannot read .*config.json")
    (tmp_path / "ok" / "config.json").write_text("{}")
    (tmp_path / "ok" / "tokenizer.json").write_text("{")
    fails(f"cross-encoder:{tmp_path}/ok", "cannot load the tokenizer")
    fails("cross-encoder:", "needs a model: local/cross-encoder:<org>/<name> .*/path/to/model")
    fails("cross-encoder: ", "needs a model")
    fails("nonsense", "unknown local model 'nonsense'; available: bm25, cross-encoder:<model>")


def test_bad_options_are_configuration_errors(model_dir: Path) -> None:
    model = f"local/cross-encoder:{model_dir}"
    for options, message in [
        ({"batch_size": 0}, "batch_size must be an int >= 1"),
        ({"max_batch_tokens": 0.5}, "max_batch_tokens must be an int >= 1"),
        ({"threads": True}, "threads must be an int >= 1"),
        ({"max_length": 2}, "max_length must be an int >= 4"),
        ({"cache_size": -1}, "cache_size must be an int >= 0"),
        ({"activation": "softmax"}, "activation must be one of sigmoid, none"),
        ({"pooling": "sum"}, "pooling must be one of mean, cls, max"),
        ({"query_prefix": 1}, "query_prefix must be a str"),
        ({"spin_wait": "yes"}, "spin_wait must be True or False"),
    ]:
        with pytest.raises(rerankit.ConfigurationError, match=message):
            rerankit.rerank(model, QUERY, DOCS, **options)
    with pytest.raises(rerankit.UnsupportedParameterError, match="extra_body"):
        rerankit.rerank(model, QUERY, DOCS, extra_body={"x": 1})


@pytest.mark.parametrize("missing", ["onnxruntime", "tokenizers", "numpy"])
def test_a_missing_extra_says_how_to_install_it(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    monkeypatch.setitem(sys.modules, missing, None)
    for name in ("rerankit.providers._onnx", "rerankit.providers._onnx_models"):
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(
        rerankit.ConfigurationError,
        match=r"pip install 'rerankit\[local\]' .*pip install '\.\[local\]'",
    ):
        rerankit.rerank(f"local/cross-encoder:{model_dir}", QUERY, DOCS)
    assert rerankit.rerank("local/bm25", QUERY, DOCS).results  # needs none of them


def test_import_rerankit_and_bm25_load_no_neural_dependency() -> None:
    code = (
        "import sys, rerankit; rerankit.rerank('local/bm25', 'q', ['q a', 'b']); "
        "print(sorted(m for m in ('numpy', 'onnxruntime', 'tokenizers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------- sharing


def test_concurrent_calls_share_one_loaded_model(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = []
    real = _onnx.ort.InferenceSession

    def counting(*args: Any, **kwargs: Any) -> Any:
        created.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(_onnx.ort, "InferenceSession", counting)
    results: list[list[float]] = []

    async def one(client: rerankit.AsyncClient) -> None:
        response = await client.rerank(f"local/cross-encoder:{model_dir}", QUERY, DOCS)
        results.append(scores_by_index(response))

    async def main() -> None:
        async with (
            rerankit.AsyncClient() as first,
            rerankit.AsyncClient() as second,
            anyio.create_task_group() as group,
        ):
            for i in range(8):
                group.start_soon(one, first if i % 2 else second)

    anyio.run(main)
    assert len(created) == 1
    assert len(results) == 8
    assert all(r == results[0] for r in results)
    # other activations reuse the same session; another thread count is another session
    rerankit.rerank(f"local/cross-encoder:{model_dir}", QUERY, DOCS, activation="none")
    assert len(created) == 1
    rerankit.rerank(f"local/cross-encoder:{model_dir}", QUERY, DOCS, threads=1)
    assert len(created) == 2


def test_threads_and_spin_wait_options(model_dir: Path) -> None:
    files = find_files(str(model_dir), None, "test")

    def session_options(**options: Any) -> Any:
        model = _onnx_models.load_model("cross-encoder", files, check_options(options, "t"), "t")
        return model.session._session.get_session_options()

    assert session_options(threads=1).intra_op_num_threads == 1
    default = session_options()
    assert default.intra_op_num_threads == _onnx.default_threads() >= 1
    spinning = "session.intra_op.allow_spinning"
    assert default.get_session_config_entry(spinning) == "0"
    assert session_options(spin_wait=True).get_session_config_entry(spinning) == "1"


def test_int32_inputs_and_position_ids(tmp_path: Path) -> None:
    tiny_bert_dir(tmp_path / "plain")
    tiny_bert_dir(tmp_path / "int32", graph={"int32": True})
    tiny_bert_dir(tmp_path / "positions", graph={"position_input": True})
    expected = scores_by_index(
        rerankit.rerank(f"local/cross-encoder:{tmp_path}/plain", QUERY, DOCS)
    )
    for variant in ("int32", "positions"):
        response = rerankit.rerank(f"local/cross-encoder:{tmp_path}/{variant}", QUERY, DOCS)
        assert scores_by_index(response) == pytest.approx(expected, abs=1e-6), variant


def test_config_json_is_optional(model_dir: Path) -> None:
    expected = scores_by_index(rerankit.rerank(f"local/cross-encoder:{model_dir}", QUERY, DOCS))
    _onnx.clear_cache()
    config = json.loads((model_dir / "config.json").read_text())
    (model_dir / "config.json").unlink()
    response = rerankit.rerank(f"local/cross-encoder:{model_dir}", QUERY, DOCS)
    assert scores_by_index(response) == pytest.approx(expected)
    assert config["max_position_embeddings"] == 64


# --- progress of long work: reports per batch, and the command line's progress line ------------


class Terminal(io.StringIO):
    """Standard error as a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.mark.anyio
async def test_scoring_reports_each_batch_to_a_watcher(model_dir: Path) -> None:
    reports: list[int] = []
    async with rerankit.AsyncClient() as client:
        with reporting(reports.append):
            call = asyncio.ensure_future(
                client.rerank(f"local/cross-encoder:{model_dir}", QUERY, DOCS * 20, batch_size=8)
            )
        await call
        await client.rerank(f"local/cross-encoder:{model_dir}", QUERY, DOCS)  # not watched
    assert sum(reports) == 100
    assert len(reports) == 13  # one report per batch of at most 8


def test_rerank_command_shows_progress_on_a_terminal(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rerankit.cli import _rerank, main

    documents = tmp_path / "documents.txt"
    documents.write_text("\n".join(DOCS[:4] * 25) + "\n", encoding="utf-8")
    argv = ["rerank", "-q", QUERY, "-n", "1", "-m", f"local/cross-encoder:{model_dir}"]
    monkeypatch.setattr(_rerank, "PROGRESS_AFTER", 0.0)  # any work counts as long here
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main([*argv, str(documents)]) == 0
    last = terminal.getvalue().rsplit("\r", 1)[1]  # each redraw returns to the line's start
    assert re.fullmatch(r"\[#{24}\]  100/100 documents  100%  [0-9.]+/s\x1b\[K\n", last), last

    not_a_terminal = io.StringIO()
    monkeypatch.setattr(sys, "stderr", not_a_terminal)
    assert main([*argv, str(documents)]) == 0
    assert not_a_terminal.getvalue() == ""
