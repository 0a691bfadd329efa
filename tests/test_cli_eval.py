"""``rerankit eval``: the table, JSON, Markdown, the plot, progress and exit statuses."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from rerankit.cli import main
from rerankit.testing import FakeServer, Reply

from .conftest import API_KEY

DATA = Path(__file__).parent / "eval_data"
ROWS = str(DATA / "rows.jsonl")


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RERANKIT_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def cohere_env(cohere_server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> FakeServer:
    monkeypatch.setenv("COHERE_API_KEY", API_KEY)
    monkeypatch.setenv("COHERE_API_BASE", cohere_server.url)
    return cohere_server


def test_eval_prints_the_table_and_writes_the_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plot = tmp_path / "quality.png"
    status = main(
        ["eval", str(DATA / "beir"), "-m", "local/bm25", "--k", "10", "--plot", str(plot)]
    )

    out = capsys.readouterr().out
    assert status == 0
    assert out.startswith("beir-test: 3 queries, top 10 of bm25s reranked")
    header, _rule, first, model = out.splitlines()[2:6]
    assert header.split() == [
        "model", "nDCG@10", "MRR@10", "Recall@10", "MAP", "p", "(nDCG@10)",
        "p50", "ms", "p95", "ms", "$/1k", "queries", "docs/s",
    ]  # fmt: skip
    assert first.startswith("bm25s ")
    assert model.startswith("local/bm25 ")
    assert plot.read_bytes().startswith(b"\x89PNG")


def test_eval_json_has_one_object_per_model_under_its_model_string(
    capsys: pytest.CaptureFixture[str], cohere_env: FakeServer
) -> None:
    status = main(["eval", ROWS, "-m", "local/bm25", "-m", "cohere/rerank-v3.5", "--json"])

    report = json.loads(capsys.readouterr().out)
    assert status == 0
    assert list(report["models"]) == ["given order", "local/bm25", "cohere/rerank-v3.5"]
    cohere = report["models"]["cohere/rerank-v3.5"]
    assert cohere["nDCG@10"] == pytest.approx(2.5 / 3)
    assert cohere["MRR@10"] == pytest.approx(7 / 9)
    assert cohere["cost_per_1k_queries"] == pytest.approx(2.0)
    assert (report["k"], report["queries"]) == (100, 3)


def test_eval_markdown_and_a_rerun_from_the_cache(
    capsys: pytest.CaptureFixture[str], cohere_env: FakeServer
) -> None:
    assert main(["eval", ROWS, "-m", "cohere/rerank-v3.5", "--markdown"]) == 0
    first = capsys.readouterr().out
    assert "| model | nDCG@10 | MRR@10 | Recall@100 | MAP |" in first
    assert main(["eval", ROWS, "-m", "cohere/rerank-v3.5", "--markdown"]) == 0
    assert capsys.readouterr().out == first  # the same report, from the cache
    assert len(cohere_env.received) == 3


def test_failed_queries_exit_1_and_a_rerun_retries_them(
    capsys: pytest.CaptureFixture[str], cohere_env: FakeServer
) -> None:
    cohere_env.fail(Reply(status=400, body={"message": "bad luck"}))
    assert main(["eval", ROWS, "-m", "cohere/rerank-v3.5", "-c", "1"]) == 1
    captured = capsys.readouterr()
    assert "1 queries failed" in captured.err
    assert "run the same command again" in captured.err
    assert main(["eval", ROWS, "-m", "cohere/rerank-v3.5"]) == 0
    assert len(cohere_env.received) == 4


def test_eval_shows_progress_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", ROWS, "-m", "local/bm25", "--no-cache", "--progress"]) == 0
    err = capsys.readouterr().err
    assert "local/bm25:" in err
    assert "3/3 queries" in err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["eval", "missing.jsonl", "-m", "local/bm25"], "missing.jsonl: no such file"),
        (["eval", str(DATA / "qrels.txt"), "-m", "local/bm25"], "qrels.txt, line 1: invalid JSON"),
        (["eval", ROWS, "-m", "nosuch/model"], "nosuch"),
    ],
)
def test_bad_input_is_a_clear_error(
    arguments: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(arguments)
    err = capsys.readouterr().err
    assert status in (1, 2)
    assert message in err


def test_options_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["eval", ROWS, "-m", "local/bm25", "--json", "--markdown"])
    with pytest.raises(SystemExit):
        main(["eval", ROWS, "-m", "local/bm25", "--cache", "x.sqlite", "--no-cache"])
    with pytest.raises(SystemExit):
        main(["eval", ROWS, "--k", "0", "-m", "local/bm25"])
    assert "--k: must be at least 1" in capsys.readouterr().err


@pytest.mark.slow
def test_eval_runs_as_a_command(tmp_path: Path) -> None:
    plot = tmp_path / "plot.svg"
    done = subprocess.run(
        [sys.executable, "-m", "rerankit", "eval", ROWS, "-m", "local/bm25", "--plot", str(plot)],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "local/bm25" in done.stdout
    assert "<svg" in plot.read_text()
    assert io.StringIO(done.stderr).read() == ""  # no progress off a terminal
