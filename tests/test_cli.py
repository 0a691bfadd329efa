"""The rerankit command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rerankit.cli import main

FAQ = Path(__file__).parent.parent / "docs" / "examples" / "faq.txt"


def test_main_job_ranks_the_example_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rerank", "--query", "how do I reset my password", str(FAQ)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["rank", "score", "doc", "text"]
    assert len(lines) == 1 + len(FAQ.read_text().splitlines())
    assert lines[1].split()[2] == "0"
    assert "Reset password" in lines[1]


def test_json_top_n_and_stdin() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "rerankit",
            "rerank",
            "-q",
            "green apple",
            "--top-n",
            "2",
            "--json",
            "-",
        ],
        input="red car\ngreen apple pie\n\napple\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    payload = json.loads(result.stdout)
    assert [r["index"] for r in payload["results"]] == [1, 2]
    assert payload["results"][0]["document"] == {"text": "green apple pie"}
    assert payload["provider"] == "local"
    assert payload["model"] == "bm25"


def test_errors_go_to_stderr_with_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rerank", "-q", "x", "/no/such/file"]) == 2
    assert "cannot read /no/such/file" in capsys.readouterr().err
    assert main(["rerank", "-q", "x", "-m", "nowhere/model", str(FAQ)]) == 1
    assert "unknown provider 'nowhere'" in capsys.readouterr().err
    assert main(["rerank", "-q", "x", "-m", "cohere/rerank-v3.5", str(FAQ)]) == 1
    assert "COHERE_API_KEY" in capsys.readouterr().err
    assert main([]) == 2
    with pytest.raises(SystemExit) as info:
        main(["rerank", "-q", "x", "-n", "0", str(FAQ)])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["rerank", str(FAQ)])
    assert info.value.code == 2
