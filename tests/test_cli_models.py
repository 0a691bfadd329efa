"""``rerankit models``: download, list, info, remove against a fake Hub; convert; quantize."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import rerankit
from rerankit.cli import main
from rerankit.testing import FakeHub

for _module in ("numpy", "onnx", "onnxruntime", "tokenizers", "huggingface_hub"):
    pytest.importorskip(_module)

from rerankit.providers import _onnx  # noqa: E402
from tests.test_local_convert import weights_dir  # noqa: E402
from tests.test_local_hub import DOCS, QUERY, model_files  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    monkeypatch.setenv("RERANKIT_CACHE_DIR", str(tmp_path / "rerankit-cache"))
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    for name in ("HF_HUB_OFFLINE", "HF_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    _onnx.clear_cache()
    yield
    _onnx.clear_cache()


def scores(model: str) -> list[float]:
    response = rerankit.rerank(model=model, query=QUERY, documents=DOCS, max_retries=0)
    return [r.relevance_score for r in sorted(response.results, key=lambda r: r.index)]


def test_download_list_info_remove(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeHub() as hub:
        commit = hub.add("org/tiny", model_files(tmp_path / "m"))
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        assert main(["models", "download", "org/tiny"]) == 0
        path = capsys.readouterr().out.strip()
        assert path.endswith(f"snapshots/{commit}/onnx/model.onnx")
        assert sorted(p for _, _, p in hub.downloads) == [
            "config.json",
            "onnx/model.onnx",
            "tokenizer.json",
        ]
    assert main(["models", "list"]) == 0
    listed = capsys.readouterr().out
    assert f"org/tiny@{commit[:12]} (main)" in listed
    assert "model.onnx" in listed
    assert "ms-marco-MiniLM-L-6-v2" in listed  # the known names
    assert main(["models", "info", "org/tiny"]) == 0
    assert "onnx/model.onnx" in capsys.readouterr().out
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert len(scores("local/cross-encoder:org/tiny")) == len(DOCS)  # from the cache
    assert main(["models", "remove", "org/tiny"]) == 0
    assert "removed org/tiny" in capsys.readouterr().out
    assert main(["models", "remove", "org/tiny"]) == 1
    assert "not in the Hugging Face cache" in capsys.readouterr().err


def test_info_of_a_known_name_needs_no_network(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "info", "bge-reranker-base"]) == 0
    out = capsys.readouterr().out
    assert "repo: BAAI/bge-reranker-base" in out
    assert "licence: MIT" in out
    assert "cached: no" in out


def test_convert_writes_an_onnx_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weights_dir(tmp_path / "ckpt")
    assert main(["models", "convert", str(tmp_path / "ckpt"), str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "model.onnx").is_file()
    assert (tmp_path / "out" / "tokenizer.json").is_file()
    converted = scores(f"local/cross-encoder:{tmp_path / 'out'}")
    _onnx.clear_cache()
    assert converted == pytest.approx(scores(f"local/cross-encoder:{tmp_path / 'ckpt'}"))
    assert main(["models", "convert", str(tmp_path / "out"), str(tmp_path / "again")]) == 1
    assert "needs model.safetensors" in capsys.readouterr().err


def test_quantize_writes_an_int8_model_that_ranks_alike(tmp_path: Path) -> None:
    model_files(tmp_path / "m", hidden=64, intermediate=128)
    assert main(["models", "quantize", str(tmp_path / "m"), str(tmp_path / "q")]) == 0
    quantized_size = (tmp_path / "q" / "model.onnx").stat().st_size
    assert quantized_size < (tmp_path / "m" / "onnx" / "model.onnx").stat().st_size / 2
    fp32 = scores(f"local/cross-encoder:{tmp_path / 'm'}")
    int8 = scores(f"local/cross-encoder:{tmp_path / 'q'}")
    assert int8 == pytest.approx(fp32, abs=0.05)
    assert main(["models", "quantize", str(tmp_path / "m"), str(tmp_path / "q")]) == 2
