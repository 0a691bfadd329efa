"""local/<kind>:<org>/<name>: models fetched from a fake Hugging Face Hub on 127.0.0.1.

The real ``huggingface_hub`` client talks to ``rerankit.testing.FakeHub`` through ``HF_ENDPOINT``;
the models are the tiny BERT cross-encoders of ``test_local_bert``.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import rerankit
from rerankit.testing import FakeHub

for _module in ("numpy", "onnx", "onnxruntime", "tokenizers", "huggingface_hub"):
    pytest.importorskip(_module)

from rerankit.providers import _onnx  # noqa: E402
from rerankit.providers._hub_files import choose_onnx, needed_files, parse_hub  # noqa: E402
from rerankit.providers._known_models import known_model  # noqa: E402
from tests.test_local_bert import onnx, tiny_bert_dir  # noqa: E402

QUERY = "how do i reset my password"
DOCS = ["click reset password on the login page", "bake bread in a hot oven", "the weather"]
ROOT = Path(__file__).resolve().parent.parent
ONNX_AND_TOKENIZER = ["tokenizer.json", "config.json", "onnx/model.onnx"]


def model_files(directory: Path, *, seed: int = 0, **options: Any) -> dict[str, bytes]:
    """The files of a tiny model directory (ONNX file in ``onnx/``), path -> bytes."""
    tiny_bert_dir(directory, layout="onnx/model.onnx", seed=seed, **options)
    return {
        path.relative_to(directory).as_posix(): path.read_bytes()
        for path in directory.rglob("*")
        if path.is_file()
    }


@pytest.fixture(autouse=True)
def _fresh_models() -> Iterator[None]:
    _onnx.clear_cache()
    yield
    _onnx.clear_cache()


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    with FakeHub() as fake:
        monkeypatch.setenv("HF_ENDPOINT", fake.url)
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub-cache"))
        monkeypatch.setenv("RERANKIT_CACHE_DIR", str(tmp_path / "rerankit-cache"))
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        yield fake


@pytest.fixture
def tiny(tmp_path: Path) -> dict[str, bytes]:
    """A repo as the Hub has them: fp32 and quantized ONNX files, weights, a README."""
    files = model_files(tmp_path / "seed0")
    other = model_files(tmp_path / "seed1", seed=1)
    files["onnx/model_quantized.onnx"] = other["onnx/model.onnx"]
    files["onnx/model_fp16.onnx"] = b"not used"
    files["model.safetensors"] = b"not used"
    files["README.md"] = b"# tiny"
    return files


def scores(model: str, **kwargs: Any) -> list[float]:
    response = rerankit.rerank(model=model, query=QUERY, documents=DOCS, max_retries=0, **kwargs)
    return [r.relevance_score for r in sorted(response.results, key=lambda r: r.index)]


def local_scores(tmp_path: Path, seed: int) -> list[float]:
    _onnx.clear_cache()
    return scores(f"local/cross-encoder:{tmp_path / f'seed{seed}'}")


def test_first_call_downloads_only_the_files_it_needs(
    hub: FakeHub, tiny: dict[str, bytes], tmp_path: Path
) -> None:
    hub.add("org/tiny", tiny)
    got = scores("local/cross-encoder:org/tiny")
    assert sorted(path for _, _, path in hub.downloads) == sorted(ONNX_AND_TOKENIZER)
    requests = hub.requests
    assert scores("local/cross-encoder:org/tiny") == got  # fetched once per process
    assert hub.requests == requests
    snapshots = list((tmp_path / "hub-cache" / "models--org--tiny" / "snapshots").iterdir())
    assert len(snapshots) == 1
    assert got == pytest.approx(local_scores(tmp_path, seed=0), abs=1e-6)


@pytest.mark.slow
def test_a_second_process_offline_loads_from_the_cache_with_no_request(
    hub: FakeHub, tiny: dict[str, bytes], tmp_path: Path
) -> None:
    hub.add("org/tiny", tiny)
    online = scores("local/cross-encoder:org/tiny")
    requests = hub.requests
    code = (
        "import json, rerankit\n"
        f"r = rerankit.rerank(model='local/cross-encoder:org/tiny', query={QUERY!r}, "
        f"documents={DOCS!r})\n"
        "print(json.dumps([x.relevance_score for x in sorted(r.results, key=lambda x: x.index)]))"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == pytest.approx(online, abs=1e-6)
    assert hub.requests == requests


def test_a_pinned_revision_or_tag_is_honoured(hub: FakeHub, tmp_path: Path) -> None:
    first = hub.add("org/tiny", model_files(tmp_path / "seed0"), tags=("v1",))
    hub.add("org/tiny", model_files(tmp_path / "seed1", seed=1))
    old, new = local_scores(tmp_path, 0), local_scores(tmp_path, 1)
    assert old != pytest.approx(new, abs=1e-6)
    _onnx.clear_cache()
    assert scores(f"local/cross-encoder:org/tiny@{first}") == pytest.approx(old, abs=1e-6)
    assert scores("local/cross-encoder:org/tiny@v1") == pytest.approx(old, abs=1e-6)
    assert scores("local/cross-encoder:org/tiny") == pytest.approx(new, abs=1e-6)
    # v1 is the commit already cached: checked (HEAD), not downloaded again
    assert {revision for _, revision, _ in hub.downloads} == {first, "main"}
    assert any("/resolve/v1/" in r.path for r in hub.server.received)


def test_quantized_and_onnx_file_choose_the_onnx_file(
    hub: FakeHub, tiny: dict[str, bytes], tmp_path: Path
) -> None:
    hub.add("org/tiny", tiny)
    quantized = local_scores(tmp_path, seed=1)  # the repo's model_quantized.onnx
    _onnx.clear_cache()
    assert scores("local/cross-encoder:org/tiny", quantized=True) == pytest.approx(quantized)
    named = scores("local/cross-encoder:org/tiny", onnx_file="onnx/model_quantized.onnx")
    assert named == pytest.approx(quantized)
    assert [p for _, _, p in hub.downloads].count("onnx/model_quantized.onnx") == 1
    assert "onnx/model.onnx" not in [p for _, _, p in hub.downloads]


def test_external_data_is_downloaded_with_the_onnx_file(hub: FakeHub, tmp_path: Path) -> None:
    directory = tmp_path / "seed0"
    files = model_files(directory)
    model = onnx.load(str(directory / "onnx" / "model.onnx"))
    onnx.save(
        model,
        str(directory / "onnx" / "model.onnx"),
        save_as_external_data=True,
        location="model.onnx_data",
    )
    files["onnx/model.onnx"] = (directory / "onnx" / "model.onnx").read_bytes()
    files["onnx/model.onnx_data"] = (directory / "onnx" / "model.onnx_data").read_bytes()
    hub.add("org/external", files)
    got = scores("local/cross-encoder:org/external")
    assert "onnx/model.onnx_data" in [p for _, _, p in hub.downloads]
    assert got == pytest.approx(local_scores(tmp_path, seed=0), abs=1e-6)


def test_a_local_path_wins_over_a_repo_id_and_hf_prefix_forces_the_hub(
    hub: FakeHub, tiny: dict[str, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub.add("org/tiny", tiny)
    model_files(tmp_path / "work" / "org" / "tiny", seed=1)
    monkeypatch.chdir(tmp_path / "work")
    assert scores("local/cross-encoder:org/tiny") == pytest.approx(local_scores(tmp_path, 1))
    assert hub.downloads == []
    _onnx.clear_cache()
    assert scores("local/cross-encoder:hf:org/tiny") == pytest.approx(local_scores(tmp_path, 0))
    assert hub.downloads


def test_model_string_parsing() -> None:
    assert parse_hub("org/name") is not None
    assert str(parse_hub("org/name@v1.0")) == "org/name@v1.0"
    for path in ("/models/x", "./org/name", "~/x", "a/b/c", "pkg:x", "name"):
        assert parse_hub(path) is None
    with pytest.raises(rerankit.ConfigurationError, match="not a Hugging Face model id"):
        parse_hub("hf:/models/x")


def test_choosing_the_onnx_file() -> None:
    files = {"onnx/model.onnx", "model.onnx", "onnx/model_int8.onnx", "onnx/model_fp16.onnx"}
    assert choose_onnx(files, None, False, "t", "r") == "onnx/model.onnx"
    assert choose_onnx(files - {"onnx/model.onnx"}, None, False, "t", "r") == "model.onnx"
    assert choose_onnx(files, None, True, "t", "r") == "onnx/model_int8.onnx"
    with pytest.raises(rerankit.ConfigurationError, match="no fp32 ONNX file.*onnx_file"):
        choose_onnx({"onnx/model_fp16.onnx"}, None, False, "t", "r")
    with pytest.raises(rerankit.ConfigurationError, match="no int8 ONNX file"):
        choose_onnx({"model.onnx"}, None, True, "t", "r")
    with pytest.raises(rerankit.ConfigurationError, match="its ONNX files: model.onnx"):
        choose_onnx({"model.onnx"}, "other.onnx", False, "t", "r")
    listing = {"onnx/model.onnx", "onnx/model.onnx_data", "onnx/tokenizer.json", "config.json"}
    assert needed_files(listing, "onnx/model.onnx") == [
        "onnx/tokenizer.json",
        "config.json",
        "onnx/model.onnx_data",
        "onnx/model.onnx",
    ]


# --------------------------------------------------------------------------- errors


def fails(model: str, error: type[Exception], match: str, **kwargs: Any) -> Exception:
    with pytest.raises(error, match=match) as caught:
        scores(model, **kwargs)
    return caught.value


def test_a_missing_repo_or_revision(hub: FakeHub, tiny: dict[str, bytes]) -> None:
    hub.add("org/tiny", tiny)
    fails("local/cross-encoder:org/missing", rerankit.ConfigurationError, "no model org/missing")
    fails("local/cross-encoder:org/tiny@nope", rerankit.ConfigurationError, "no revision 'nope'")


def test_a_gated_repo_needs_a_token_never_shown(
    hub: FakeHub, tiny: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    hub.add("org/gated", tiny, gated_token="hf_secret_token_123")
    error = fails("local/cross-encoder:org/gated", rerankit.ConfigurationError, "gated.*HF_TOKEN")
    monkeypatch.setenv("HF_TOKEN", "hf_wrong_token_456")
    error = fails("local/cross-encoder:org/gated", rerankit.ConfigurationError, "has no access")
    assert "hf_wrong_token_456" not in str(error)
    assert error.__cause__ is None
    assert error.__context__ is None
    monkeypatch.setenv("HF_TOKEN", "hf_secret_token_123")
    assert len(scores("local/cross-encoder:org/gated")) == len(DOCS)


def test_a_repo_without_onnx_says_how_to_make_one(hub: FakeHub, tiny: dict[str, bytes]) -> None:
    files = {k: v for k, v in tiny.items() if not k.endswith((".onnx", ".safetensors"))}
    hub.add("org/weights", {**files, "pytorch_model.bin": b"not used"})
    error = fails("local/cross-encoder:org/weights", rerankit.ConfigurationError, "no ONNX export")
    assert "optimum-cli export onnx --model org/weights --task text-classification" in str(error)
    assert "pytorch_model.bin" in str(error)
    hub.add("org/broken", {**files, "model.safetensors": b"not safetensors"})
    fails("local/cross-encoder:org/broken", rerankit.ConfigurationError, "cannot read the weights")


def test_offline_with_nothing_cached(
    hub: FakeHub, tiny: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    hub.add("org/tiny", tiny)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    fails("local/cross-encoder:org/tiny", rerankit.ConfigurationError, "HF_HUB_OFFLINE is set")
    assert hub.requests == 0


def test_an_unreachable_hub_is_a_connection_error_unless_cached(
    hub: FakeHub, tiny: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    hub.add("org/tiny", tiny)
    online = scores("local/cross-encoder:org/tiny")
    _onnx.clear_cache()
    with socket.socket() as unused:  # a port nothing listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    assert scores("local/cross-encoder:org/tiny") == online  # the cache, as huggingface_hub does
    fails("local/cross-encoder:org/other", rerankit.APIConnectionError, "cannot download")


def test_a_cut_download_is_never_loaded(
    hub: FakeHub, tiny: dict[str, bytes], tmp_path: Path
) -> None:
    hub.add("org/tiny", tiny)
    hub.cut("onnx/model.onnx", keep=1000)
    fails("local/cross-encoder:org/tiny", rerankit.APIConnectionError, "cut short")
    snapshots = tmp_path / "hub-cache" / "models--org--tiny" / "snapshots"
    assert not list(snapshots.glob("*/onnx/model.onnx"))
    assert len(scores("local/cross-encoder:org/tiny")) == len(DOCS)  # the next call downloads


@pytest.mark.slow  # huggingface_hub waits a second before resuming
def test_a_dropped_connection_is_retried_and_the_whole_file_loaded(
    hub: FakeHub, tiny: dict[str, bytes], tmp_path: Path
) -> None:
    hub.add("org/tiny", tiny)
    hub.drop("onnx/model.onnx")
    assert scores("local/cross-encoder:org/tiny") == pytest.approx(local_scores(tmp_path, 0))
    gets = [r for r in hub.server.received if r.method == "GET" and r.path.endswith(".onnx")]
    assert len(gets) == 2  # (a file this small is fetched again from its start)


def test_concurrent_first_calls_download_once(hub: FakeHub, tiny: dict[str, bytes]) -> None:
    hub.add("org/tiny", tiny)

    async def main() -> None:
        async with rerankit.AsyncClient(max_retries=0) as client:
            await asyncio.gather(
                *(client.rerank("local/cross-encoder:org/tiny", QUERY, DOCS) for _ in range(4))
            )

    asyncio.run(main())
    assert sorted(path for _, _, path in hub.downloads) == sorted(ONNX_AND_TOKENIZER)
    assert sum(r.path.startswith("/api/models/") for r in hub.server.received) == 1


def test_a_corrupt_onnx_file(hub: FakeHub, tiny: dict[str, bytes]) -> None:
    hub.add("org/corrupt", {**tiny, "onnx/model.onnx": b"\x08\x07garbage" * 100})
    fails("local/cross-encoder:org/corrupt", rerankit.ConfigurationError, "cannot load the ONNX")


def test_huggingface_hub_is_imported_only_for_hub_models(tmp_path: Path) -> None:
    model_files(tmp_path / "m")
    code = (
        "import sys, rerankit\n"
        f"rerankit.rerank(model='local/cross-encoder:{tmp_path / 'm'}', query='q', "
        "documents=['d'])\n"
        "assert 'huggingface_hub' not in sys.modules, 'imported'\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_quantized_chooses_an_int8_file_of_a_directory_too(tmp_path: Path) -> None:
    model_files(tmp_path / "seed1", seed=1)
    model_files(tmp_path / "seed0")
    (tmp_path / "seed0" / "onnx" / "model_quantized.onnx").write_bytes(
        (tmp_path / "seed1" / "onnx" / "model.onnx").read_bytes()
    )
    got = scores(f"local/cross-encoder:{tmp_path / 'seed0'}", quantized=True)
    assert got == pytest.approx(local_scores(tmp_path, seed=1))


def test_known_models_by_short_name(hub: FakeHub, tiny: dict[str, bytes]) -> None:
    known = known_model("ms-marco-MiniLM-L-6-v2")
    assert known is not None
    assert known.revision is not None
    hub.add(known.repo_id, tiny, commit=known.revision)
    assert len(scores("local/cross-encoder:ms-marco-MiniLM-L-6-v2")) == len(DOCS)
    assert {(repo, revision) for repo, revision, _ in hub.downloads} == {
        (known.repo_id, known.revision)
    }
    fails(
        "local/bi-encoder:ms-marco-MiniLM-L-6-v2",
        rerankit.ConfigurationError,
        "is a cross-encoder model: use local/cross-encoder:ms-marco-MiniLM-L-6-v2",
    )


def test_the_known_models_page_is_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_model_docs.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
