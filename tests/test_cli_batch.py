"""``rerankit batch``: JSON Lines in and out, per-job errors, resuming, progress, concurrency."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest

import rerankit
from rerankit.cli import main
from rerankit.cli._progress import Progress
from rerankit.testing import FakeServer, Reply

from .conftest import API_KEY
from .support import DOCUMENTS, QUERY

JOBS = [
    {"query": QUERY, "documents": DOCUMENTS[:4]},
    {"query": "router settings", "documents": DOCUMENTS[:6], "top_n": 2},
    {"query": "invoices", "documents": DOCUMENTS[:3], "id": "inv"},
]


def write_jobs(path: Path, jobs: list[Any], extra: str = "") -> Path:
    path.write_text("\n".join(json.dumps(job) for job in jobs) + "\n" + extra, encoding="utf-8")
    return path


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def by_line(records: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {record["line"]: record for record in records}


@pytest.fixture
def cohere_env(cohere_server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> FakeServer:
    monkeypatch.setenv("COHERE_API_KEY", API_KEY)
    monkeypatch.setenv("COHERE_API_BASE", cohere_server.url)
    return cohere_server


def test_batch_writes_one_result_line_per_job(tmp_path: Path) -> None:
    jobs = write_jobs(tmp_path / "jobs.jsonl", JOBS)
    out = tmp_path / "out.jsonl"
    assert main(["batch", str(jobs), "-o", str(out), "-n", "3", "-c", "2"]) == 0
    records = by_line(read_lines(out))
    assert sorted(records) == [1, 2, 3]
    for number, job in enumerate(JOBS, 1):
        top_n = job.get("top_n", 3)
        direct = rerankit.rerank("local/bm25", job["query"], job["documents"], top_n=top_n)
        record = records[number]
        assert [r["index"] for r in record["results"]] == [r.index for r in direct.results]
        assert record["results"][0]["relevance_score"] == pytest.approx(
            direct.results[0].relevance_score
        )
        assert "document" not in record["results"][0]
        assert record["provider"] == "local"
        assert record["model"] == "bm25"
    assert records[3]["id"] == "inv"
    assert "id" not in records[1]


def test_batch_from_stdin_to_stdout_with_documents() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rerankit", "batch", "--documents", "-n", "1", "-"],
        input="\n".join(json.dumps(job) for job in JOBS),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no progress bar: standard error is not a terminal
    records = by_line([json.loads(line) for line in result.stdout.splitlines()])
    assert records[1]["results"][0]["document"] == {"text": DOCUMENTS[1]}


def test_bad_jobs_become_error_lines_and_the_rest_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = "\n".join(
        [
            "{not json",
            json.dumps({"query": "x", "documents": "not a list", "id": 7}),
            json.dumps({"query": "x", "documents": ["a"], "topn": 1}),
            json.dumps({"query": "again", "documents": ["a"], "id": "inv"}),
            json.dumps({"query": "", "documents": ["a"]}),
        ]
    )
    jobs = write_jobs(tmp_path / "jobs.jsonl", JOBS, extra + "\n")
    out = tmp_path / "out.jsonl"
    assert main(["batch", str(jobs), "-o", str(out)]) == 1
    assert "5 jobs failed" in capsys.readouterr().err
    records = by_line(read_lines(out))
    assert sorted(records) == list(range(1, 9))
    assert all("results" in records[n] for n in (1, 2, 3))
    errors = {n: records[n]["error"] for n in range(4, 9)}
    assert "malformed" in errors[4]["message"]
    assert records[5]["id"] == 7
    assert "$.documents" in errors[5]["message"]
    assert "unknown field `topn`" in errors[6]["message"]
    assert errors[7]["message"] == "invalid job: duplicate id 'inv'"
    assert errors[8]["type"] == "ConfigurationError"
    assert {error["type"] for n, error in errors.items() if n < 8} == {"InvalidJob"}


def test_resume_skips_done_jobs_and_reruns_failed_ones(
    tmp_path: Path, cohere_env: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = write_jobs(tmp_path / "jobs.jsonl", JOBS)
    out = tmp_path / "out.jsonl"
    args = ["batch", str(jobs), "-o", str(out), "-m", "cohere/rerank-v3.5", "-c", "1"]
    cohere_env.fail(Reply(status=400, body={"message": "bad luck"}))
    assert main(args) == 1
    first = read_lines(out)
    assert first[0] == {
        "line": 1,
        "error": {
            "type": "BadRequestError",
            "message": "cohere returned HTTP 400 for model 'rerank-v3.5': bad luck",
            "status_code": 400,
        },
    }
    assert len(cohere_env.received) == 3

    assert main(args) == 0
    assert "2 jobs already done; 1 failed jobs run again" in capsys.readouterr().err
    assert len(cohere_env.received) == 4  # only the failed job ran again
    final = read_lines(out)
    assert final[:2] == first[1:]  # kept as they were
    assert sorted(record["line"] for record in final) == [1, 2, 3]
    assert all("error" not in record for record in final)

    assert main(args) == 0
    assert len(cohere_env.received) == 4  # everything done: nothing sent


def test_resume_keys_jobs_by_id_and_survives_a_cut_last_line(tmp_path: Path) -> None:
    jobs = [{"id": f"job-{n}", "query": QUERY, "documents": DOCUMENTS[:3]} for n in range(4)]
    path = write_jobs(tmp_path / "jobs.jsonl", jobs)
    out = tmp_path / "out.jsonl"
    assert main(["batch", str(path), "-o", str(out)]) == 0
    lines = out.read_text(encoding="utf-8").splitlines(keepends=True)
    done = sorted(lines, key=lambda line: json.loads(line)["line"])[:2]
    out.write_text("".join(done) + done[0][:20], encoding="utf-8")  # an interrupted write
    write_jobs(path, [jobs[3], jobs[2], jobs[1], jobs[0]])  # reordered: ids still match
    assert main(["batch", str(path), "-o", str(out)]) == 0
    final = read_lines(out)
    assert sorted(record["id"] for record in final) == [f"job-{n}" for n in range(4)]
    assert final[:2] == [json.loads(line) for line in done]


def test_resume_refuses_a_file_that_is_not_batch_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = write_jobs(tmp_path / "jobs.jsonl", JOBS)
    notes = tmp_path / "notes.txt"
    notes.write_text("my precious notes\n", encoding="utf-8")
    assert main(["batch", str(jobs), "-o", str(notes)]) == 2
    assert "notes.txt:1 is not JSON" in capsys.readouterr().err
    assert notes.read_text(encoding="utf-8") == "my precious notes\n"
    assert main(["batch", str(jobs), "-o", str(jobs)]) == 2
    assert "the output file is the input file" in capsys.readouterr().err


def test_usage_errors_and_model_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    jobs = write_jobs(tmp_path / "jobs.jsonl", JOBS)
    assert main(["batch", str(tmp_path / "missing.jsonl")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["batch", str(jobs), "-o", str(tmp_path / "no" / "dir.jsonl")]) == 2
    assert "cannot write" in capsys.readouterr().err
    assert main(["batch", str(jobs), "-m", "nowhere/model"]) == 1
    assert "unknown provider 'nowhere'" in capsys.readouterr().err
    assert main(["batch", str(jobs), "-m", "cohere/rerank-v3.5"]) == 1
    assert "COHERE_API_KEY" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["batch", str(jobs), "-c", "0"])
    assert info.value.code == 2


def test_concurrency_is_bounded(tmp_path: Path, cohere_env: FakeServer) -> None:
    handler = cohere_env.handler
    cohere_env.handler = lambda request: msgspec.structs.replace(handler(request), delay=0.05)
    jobs = [{"query": QUERY, "documents": DOCUMENTS[:3]} for _ in range(12)]
    path = write_jobs(tmp_path / "jobs.jsonl", jobs)
    out = tmp_path / "out.jsonl"
    assert main(["batch", str(path), "-o", str(out), "-m", "cohere/rerank-v3.5", "-c", "3"]) == 0
    assert len(read_lines(out)) == 12
    assert len(cohere_env.received) == 12
    # Keep-alive connections are reused: one per request in flight, so at most three.
    assert 2 <= len(cohere_env.connections) <= 3


def test_progress_on_standard_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    jobs = write_jobs(tmp_path / "jobs.jsonl", JOBS)
    out = tmp_path / "out.jsonl"
    assert main(["batch", str(jobs), "-o", str(out), "--progress"]) == 0
    err = capsys.readouterr().err
    assert "3/3 jobs  100%" in err
    assert main(["batch", str(jobs), "-o", str(out), "--progress"]) == 0
    assert "3 skipped" in capsys.readouterr().err


def test_progress_line() -> None:
    now = [0.0]
    out = io.StringIO()
    progress = Progress(out, 200, interval=1.0, clock=lambda: now[0])
    now[0] = 10.0
    progress.update(done=50, failed=2, skipped=50)
    assert out.getvalue() == (
        "[############............]  100/200 jobs   50%  5.0/s  ETA 20s  50 skipped  2 failed\n"
    )
    assert Progress(io.StringIO(), None).render(1.0).startswith("0 jobs  0.0/s")


def test_progress_waits_for_its_delay_and_names_its_unit() -> None:
    now = [0.0]
    out = io.StringIO()
    quick = Progress(out, 10, unit="documents", delay=1.0, clock=lambda: now[0])
    now[0] = 0.5
    quick.update(done=10)
    quick.close()
    assert out.getvalue() == ""  # work under the delay shows nothing
    slow = Progress(out, 10, unit="documents", interval=1.0, delay=1.0, clock=lambda: now[0])
    now[0] = 1.5
    slow.update()
    empty = "[" + "." * 24 + "]"
    assert out.getvalue() == f"{empty}  0/10 documents    0%  0.0/s  1s elapsed\n"
