"""What the three framework adapters share: no framework imported by ``import rerankit``, a
clear error naming the extra when a framework is missing, and the checks of their common
arguments."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import rerankit
from rerankit import ConfigurationError
from rerankit.integrations._common import Reranker, check_client, either

FRAMEWORKS = ("langchain_core", "langchain_classic", "llama_index", "haystack")


def run(code: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return out.stdout


@pytest.mark.slow
def test_import_rerankit_imports_no_framework() -> None:
    code = f"""
        import json, sys
        import rerankit, rerankit.integrations
        print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {FRAMEWORKS!r})))
    """
    assert json.loads(run(code)) == []


@pytest.mark.slow
def test_an_adapter_without_its_framework_names_the_extra() -> None:
    code = f"""
        import importlib, json, sys

        class Missing:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {FRAMEWORKS!r}:
                    raise ImportError(f"No module named {{name!r}}")

        sys.meta_path.insert(0, Missing())
        from rerankit import ConfigurationError
        seen = {{}}
        for module in ("langchain", "llama_index", "haystack"):
            try:
                importlib.import_module("rerankit.integrations." + module)
            except ImportError as exc:
                seen[module] = [str(exc), isinstance(exc, ConfigurationError)]
        print(json.dumps(seen))
    """
    seen = json.loads(run(code))
    for module, extra in [
        ("langchain", "langchain"),
        ("llama_index", "llama-index"),
        ("haystack", "haystack"),
    ]:
        message, is_configuration_error = seen[module]
        assert f"pip install 'rerankit[{extra}]'" in message
        assert f"rerankit.integrations.{module} needs" in message
        assert is_configuration_error


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"model": ""}, "model"),
        ({"top_n": 0}, "top_n"),
        ({"max_tokens_per_doc": -1}, "max_tokens_per_doc"),
        ({"rank_fields": "title"}, "rank_fields"),
        ({"rank_fields": []}, "rank_fields"),
        ({"options": {"top_n": 3}}, "top_n"),
        ({"options": {"base_url": "http://x"}}, "base_url"),
        ({"options": {"api_key": "k-0123456789"}}, "api_key"),
        ({"options": {"aws_secret_access_key": "s"}}, "aws_secret_access_key"),
        ({"options": {"fallbacks": [{"model": "voyage/rerank-2.5", "api_key": "k"}]}}, "api_key"),
        ({"options": {"extra_headers": {"Authorization": "Bearer k"}}}, "Authorization"),
        ({"options": ["api_version"]}, "options"),
        ({"client": object()}, "client"),
        ({"api_key": 12345}, "api_key"),
    ],
)
def test_bad_arguments_name_the_argument(arguments: dict[str, object], named: str) -> None:
    options = {"model": "local/bm25", **arguments}
    with pytest.raises(ConfigurationError, match=named):
        Reranker(**options)  # type: ignore[arg-type]


def test_a_missing_rank_field_names_the_document_and_its_metadata() -> None:
    reranker = Reranker(model="local/bm25", rank_fields=["title", "text"])
    with pytest.raises(ConfigurationError, match=r"document 1 has no metadata field 'title'"):
        reranker.rank("q", ["a", "b"], [{"title": "A"}, {"author": "B"}])


def test_options_reach_the_call_and_the_key_stays_out_of_the_repr() -> None:
    reranker = Reranker(
        model="local/bm25", top_n=1, options={"timeout": 5.0}, api_key="k-0123456789"
    )
    assert "k-0123456789" not in repr(reranker)
    assert reranker.rank("cats", ["dogs bark", "cats purr"], [{}, {}])[0][0] == 1


def test_either_name_of_an_argument() -> None:
    assert either("api_key", None, "cohere_api_key", "k") == "k"
    assert either("api_key", "k", "cohere_api_key", "k") == "k"
    with pytest.raises(ConfigurationError, match="api_key= and cohere_api_key= disagree"):
        either("api_key", "k1", "cohere_api_key", "k2")


def test_clients_of_both_kinds_are_accepted() -> None:
    client = rerankit.AsyncClient()
    assert check_client(client) is client
    with rerankit.Client() as sync_client:
        assert check_client(sync_client) is sync_client


DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.mark.parametrize("page", ["langchain.md", "llama-index.md", "haystack.md"])
def test_each_integration_page_starts_with_an_example_that_runs(
    page: str, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (DOCS / page).read_text(encoding="utf-8")
    example = re.findall(r"```python\n(.*?)```", text, re.S)[0]
    exec(compile(example, f"docs/{page}", "exec"), {})

    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 2  # top 2 of 3, both about passwords
    assert all("password" in line for line in printed)


@pytest.mark.parametrize(
    ("page", "module"),
    [
        ("langchain.md", "rerankit.integrations.langchain"),
        ("llama-index.md", "rerankit.integrations.llama_index"),
        ("haystack.md", "rerankit.integrations.haystack"),
    ],
)
def test_switching_from_the_cohere_adapter_changes_the_import_and_class_name(
    page: str, module: str
) -> None:
    text = (DOCS / page).read_text(encoding="utf-8")
    (diff,) = re.findall(r"```diff\n(.*?)```", text, re.S)
    removed = [line[1:] for line in diff.splitlines() if line.startswith("-")]
    added = [line[1:] for line in diff.splitlines() if line.startswith("+")]
    old_class = removed[0].split()[-1]
    new_class = added[0].split()[-1]
    assert added[0] == f"from {module} import {new_class}"
    assert [line.replace(old_class, new_class) for line in removed[1:]] == added[1:]
    namespace: dict[str, object] = {"key": "k-0123456789"}
    exec("\n".join(added), namespace)  # the new lines build a working reranker
