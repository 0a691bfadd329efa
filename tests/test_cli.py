"""The rerankit command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import rerankit
from rerankit.cli import main
from rerankit.providers.cohere_compatible import CohereCompatibleProvider
from rerankit.providers.cohere_like import VoyageProvider
from rerankit.providers.nvidia import NvidiaNIMProvider

from .support import clear_env

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


# --- rerank: JSON Lines input -----------------------------------------------------------------


def test_rerank_jsonl_with_a_text_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "docs.jsonl"
    records = [
        {"id": "a", "body": "Invoices arrive monthly."},
        {"id": "b", "body": "Open Settings and click Reset password."},
        {"id": "c", "body": "The router has its own\nsettings page."},
    ]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n\n", encoding="utf-8")
    args = ["rerank", "-q", "reset password settings", "--jsonl", "--text-field", "body"]
    assert main([*args, str(path)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[1].split()[2] == "1"
    assert table[1].endswith("Open Settings and click Reset password.")
    assert "its own settings page." in table[2]  # newlines shown as spaces
    assert main([*args, "--json", "-n", "1", str(path)]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["results"][0]["document"] == records[1]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "docs.jsonl:2: not valid JSON"),
        ('["a list"]', "docs.jsonl:2: expected a JSON object"),
        ('{"title": "no text"}', "docs.jsonl:2: no string field 'text'"),
        ('{"text": 5}', "docs.jsonl:2: no string field 'text'"),
    ],
)
def test_rerank_jsonl_bad_line_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, message: str
) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_text('{"text": "fine"}\n' + line + "\n", encoding="utf-8")
    assert main(["rerank", "-q", "x", "--jsonl", str(path)]) == 2
    assert message in capsys.readouterr().err


def test_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ([], ["rerank"], ["batch"], ["providers"], ["serve"]):
        with pytest.raises(SystemExit) as info:
            main([*command, "--help"])
        assert info.value.code == 0
        assert "usage: rerankit" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.startswith("rerankit ")
    with pytest.raises(SystemExit) as info:
        main(["nonsense"])
    assert info.value.code == 2


# --- providers --------------------------------------------------------------------------------


def test_providers_shows_credentials_by_name_only(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "sk-very-secret-value-123"
    clear_env(monkeypatch, VoyageProvider)
    monkeypatch.setenv("CO_API_KEY", secret)
    monkeypatch.setenv("COHERE_API_BASE", "https://user:pw@cohere.internal")
    assert main(["providers"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert set(rows) == set(rerankit.available_providers())
    assert rows["cohere"].split()[1:4] == ["rerankit", "yes", "CO_API_KEY"]
    assert "COHERE_API_BASE set" in rows["cohere"]
    assert "missing: VOYAGE_API_KEY" in rows["voyage"]
    assert rows["local"].split()[1:3] == ["rerankit", "yes"]
    assert "AWS credential chain" in rows["bedrock"]
    assert secret not in out
    assert "pw@" not in out

    assert main(["providers", "--json"]) == 0
    out = capsys.readouterr().out
    assert secret not in out
    listed = {row["name"]: row for row in json.loads(out)}
    cohere = listed["cohere"]
    assert cohere["distribution"] == "rerankit"
    assert cohere["ready"] is True
    assert cohere["api_key"] == {
        "env": ["COHERE_API_KEY", "CO_API_KEY"],
        "set": "CO_API_KEY",
        "required": True,
    }
    assert listed["voyage"]["ready"] is False
    assert listed["bedrock"]["ready"] is None


def test_providers_names_plugins_and_broken_ones(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rerankit import _registry

    monkeypatch.setattr(
        _registry, "_claims", {"broken": {"rerankit-broken": "no_such_module:Provider"}}
    )
    monkeypatch.setattr(_registry, "_loaded", {})
    assert main(["providers", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["name"] == "broken"
    assert row["distribution"] == "rerankit-broken"
    assert row["ready"] is False
    assert "failed to load" in row["error"]


# --- serve: what fails before the server starts -----------------------------------------------


def test_serve_refuses_bad_configs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--config", str(tmp_path / "missing.toml")]) == 2
    assert "cannot read" in capsys.readouterr().err
    config = tmp_path / "server.toml"
    config.write_text('[models.x]\nmodel = "cohere/rerank-v3.5"\n', encoding="utf-8")
    assert main(["serve", "--config", str(config), "--port", "0"]) == 1
    assert "COHERE_API_KEY" in capsys.readouterr().err
    config.write_text('[server]\napi_key = "x"\n', encoding="utf-8")
    assert main(["serve", "--config", str(config)]) == 1
    assert "unknown field `api_key`" in capsys.readouterr().err
    config.write_text('[models.x]\nmodel = "local/bm25"\n', encoding="utf-8")
    assert main(["serve", "--config", str(config), "--host", "0.0.0.0", "--port", "0"]) == 1
    assert "allow_anonymous" in capsys.readouterr().err


# --- missing credentials: what to set, in the command line's terms -----------------------------


@pytest.mark.parametrize("command", ["rerank", "batch"])
@pytest.mark.parametrize(
    ("model", "message"),
    [
        (
            "cohere/rerank-v3.5",
            "no API key for provider 'cohere': set COHERE_API_KEY or CO_API_KEY in the environment",
        ),
        (
            "cohere_compatible/m",
            "no base URL for provider 'cohere_compatible': set COHERE_COMPATIBLE_API_BASE in the "
            "environment",
        ),
        (
            "nvidia_nim/nvidia/llama-3.2-nv-rerankqa-1b-v2",
            "no API key for provider 'nvidia_nim': set NVIDIA_NIM_API_KEY or NVIDIA_API_KEY in "
            "the environment",
        ),
    ],
)
def test_missing_credentials_name_the_variable_to_set(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    command: str,
    model: str,
    message: str,
) -> None:
    clear_env(monkeypatch, NvidiaNIMProvider, CohereCompatibleProvider)
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text('{"query": "q", "documents": ["a"]}\n', encoding="utf-8")
    argv = ["rerank", "-q", "x", str(FAQ)] if command == "rerank" else ["batch", str(jobs)]
    assert main([*argv, "-m", model]) == 1
    assert capsys.readouterr().err == f"rerankit: {message}\n"


def test_nvidia_nim_is_ready_without_a_key_only_when_self_hosted(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clear_env(monkeypatch, NvidiaNIMProvider)

    def nvidia() -> dict[str, object]:
        assert main(["providers", "--json"]) == 0
        rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
        return rows["nvidia_nim"]

    hosted = nvidia()
    assert hosted["ready"] is False
    assert hosted["api_key"] == {
        "env": ["NVIDIA_NIM_API_KEY", "NVIDIA_API_KEY"],
        "set": None,
        "required": True,
    }
    monkeypatch.setenv("NVIDIA_NIM_API_BASE", "https://integrate.api.nvidia.com/v1")  # hosted too
    assert nvidia()["ready"] is False
    monkeypatch.setenv("NVIDIA_NIM_API_BASE", "http://10.0.0.5:8000")
    self_hosted = nvidia()
    assert self_hosted["ready"] is True
    assert self_hosted["api_key"]["required"] is False
    monkeypatch.delenv("NVIDIA_NIM_API_BASE")
    monkeypatch.setenv("NVIDIA_API_KEY", "nvapi-0123456789")
    assert nvidia()["ready"] is True


def test_the_python_api_keeps_its_own_missing_key_message() -> None:
    with pytest.raises(rerankit.ConfigurationError) as info:
        rerankit.rerank("cohere/rerank-v3.5", "q", ["a"])
    assert str(info.value) == (
        "no API key for provider 'cohere': pass api_key=..., or configure it with "
        "AsyncClient(providers={'cohere': {'api_key': ...}}), or set COHERE_API_KEY or CO_API_KEY"
    )
