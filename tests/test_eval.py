"""``rerankit.eval``: data loading, first stages, metrics (checked against pytrec_eval), the
cache that makes a rerun free, and malformed inputs."""

from __future__ import annotations

import asyncio
import math
import random
from pathlib import Path
from typing import Any

import pytest

from rerankit import ConfigurationError
from rerankit.eval import (
    DataError,
    EvalReport,
    aevaluate,
    evaluate,
    load_beir,
    load_dataset,
    load_trec,
)
from rerankit.eval._first_stage import candidates
from rerankit.eval._metrics import per_query, ranked_run
from rerankit.testing import FakeServer, Reply

from .conftest import API_KEY

DATA = Path(__file__).parent / "eval_data"
ROWS = DATA / "rows.jsonl"
BEIR = DATA / "beir"
COHERE = "cohere/rerank-v3.5"
LOG2_3 = math.log2(3)

# tests/eval_data/rows.jsonl, by hand. Gains are the grades; discount log2(rank + 1).
# A: given order has grades 0, 1, 2, 0 (ideal 2, 1); the fake Cohere scores the share of query
#    words in each document (0, 1/2, 1, 1/2) and ranks 2, 1, 3, 0: ideal.
# B: the relevant document is 2nd; the fake puts it 1st.
# C: the relevant document ("Bananas ...": no query word) is 3rd in both.
GIVEN = {
    "nDCG@10": {"A": (1 / LOG2_3 + 2 / 2) / (2 + 1 / LOG2_3), "B": 1 / LOG2_3, "C": 1 / 2},
    "MRR@10": {"A": 1 / 2, "B": 1 / 2, "C": 1 / 3},
    "Recall@100": {"A": 1.0, "B": 1.0, "C": 1.0},
    "MAP": {"A": (1 / 2 + 2 / 3) / 2, "B": 1 / 2, "C": 1 / 3},
}
RERANKED = {
    "nDCG@10": {"A": 1.0, "B": 1.0, "C": 1 / 2},
    "MRR@10": {"A": 1.0, "B": 1.0, "C": 1 / 3},
    "Recall@100": {"A": 1.0, "B": 1.0, "C": 1.0},
    "MAP": {"A": 1.0, "B": 1.0, "C": 1 / 3},
}


@pytest.fixture
def cohere_env(cohere_server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> FakeServer:
    monkeypatch.setenv("COHERE_API_KEY", API_KEY)
    monkeypatch.setenv("COHERE_API_BASE", cohere_server.url)
    return cohere_server


@pytest.fixture(autouse=True)
def cache_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """rerankit's cache folder, in the test's own directory."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("RERANKIT_CACHE_DIR", str(folder))
    return folder


def approx(expected: dict[str, Any], tolerance: float = 1e-9) -> Any:
    """``pytest.approx`` for one level of nesting: ``{metric: {query: value}}``."""
    return {
        key: approx(value, tolerance)
        if isinstance(value, dict)
        else pytest.approx(value, abs=tolerance)
        for key, value in expected.items()
    }


def mean(values: dict[str, float]) -> float:
    return sum(values.values()) / len(values)


def test_metrics_and_costs_on_the_synthetic_rows_are_the_hand_computed_ones(
    cohere_env: FakeServer,
) -> None:
    report = evaluate(ROWS, [COHERE], k=100, cache=False)

    assert report.metric_names == ["nDCG@10", "MRR@10", "Recall@100", "MAP"]
    assert report.first_stage.model == "given order"
    assert report.first_stage.per_query == approx(GIVEN)
    assert report.first_stage.metrics == approx({n: mean(v) for n, v in GIVEN.items()})
    (model,) = report.models
    assert model.per_query == approx(RERANKED)
    assert model.metrics == approx({n: mean(v) for n, v in RERANKED.items()})
    assert model.cost_per_1k_queries == pytest.approx(2.0)  # one search unit a query, $0.002
    assert model.latency_p50_ms is not None
    assert model.latency_p95_ms is not None
    assert 0 < model.latency_p50_ms <= model.latency_p95_ms
    assert model.documents_per_second is not None
    assert model.documents_per_second > 0
    assert (model.failed, model.from_cache) == (0, 0)
    assert len(cohere_env.received) == 3


def test_the_significance_test_is_scipys_paired_t_test() -> None:
    from scipy import stats

    report = evaluate(ROWS, ["local/bm25"], cache=False)
    (model,) = report.models
    base = report.first_stage.per_query
    for name, values in model.per_query.items():
        differences = {a - b for a, b in zip(values.values(), base[name].values(), strict=True)}
        if len(differences) < 2:  # undefined: no variation between queries
            assert model.p_values[name] is None
        else:
            expected = stats.ttest_rel(list(values.values()), list(base[name].values())).pvalue
            assert model.p_values[name] == pytest.approx(float(expected))
    assert model.p_values["Recall@100"] is None  # reranking the same candidates: no change


def test_k_cuts_the_candidates_every_model_reranks(cohere_env: FakeServer) -> None:
    report = evaluate(ROWS, [COHERE], k=2, cache=False)

    assert [len(request.json()["documents"]) for request in cohere_env.received] == [2, 2, 2]
    # A: the first two given documents have grades 0, 1 of an ideal 2, 1
    ideal = 2 + 1 / LOG2_3
    assert report.first_stage.per_query["nDCG@10"]["A"] == pytest.approx(1 / LOG2_3 / ideal)
    assert report.models[0].per_query["nDCG@10"]["A"] == pytest.approx(1 / ideal)
    assert report.first_stage.per_query["Recall@2"] == approx({"A": 0.5, "B": 1.0, "C": 0.0})


def pytrec(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]], k: int) -> Any:
    """trec_eval's numbers, named as the report names them (RR cut at 10 by truncating)."""
    import pytrec_eval

    measures = {"ndcg_cut.10", "recall." + str(k), "map"}
    full = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    top10 = {
        qid: dict(sorted(s.items(), key=lambda i: (-i[1], i[0]))[:10]) for qid, s in run.items()
    }
    rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10)
    names = {"nDCG@10": "ndcg_cut_10", f"Recall@{k}": f"recall_{k}", "MAP": "map"}
    values = {name: {q: v[key] for q, v in full.items()} for name, key in names.items()}
    values["MRR@10"] = {q: v["recip_rank"] for q, v in rr.items()}
    return values


@pytest.mark.parametrize("seed", range(20))
def test_metrics_equal_pytrec_evals(seed: int) -> None:
    rng = random.Random(seed)
    qrels, rankings = {}, {}
    for q in range(rng.randint(1, 6)):
        docs = [f"d{i}" for i in range(rng.randint(1, 30))]
        qrels[f"q{q}"] = {
            d: rng.choice([0, 0, 1, 2, 3]) for d in rng.sample(docs, len(docs) // 2 + 1)
        }
        rankings[f"q{q}"] = rng.sample(docs, rng.randint(1, len(docs)))
    k = rng.choice([5, 10, 20])

    ours = per_query(qrels, rankings, k)
    theirs = pytrec(qrels, ranked_run(rankings), k)

    for name, values in theirs.items():
        assert ours[name] == approx(values, 1e-6), name


def test_a_run_file_is_cut_and_ordered_as_trec_eval_orders_it() -> None:
    import pytrec_eval

    dataset = load_trec(
        corpus=DATA / "corpus.tsv", queries=DATA / "topics.txt", qrels=DATA / "qrels.txt"
    )
    stage, top = candidates(dataset, 10, DATA / "bm25.run")

    assert stage == "run:bm25.run"
    assert top == {
        "q1": ["d4", "d3", "d1", "d8"],
        "q2": ["d5", "d2"],
        "q3": ["d6"],
    }  # tie: d5 first
    with (DATA / "bm25.run").open() as handle:
        raw = pytrec_eval.parse_run(handle)
    assert per_query(dataset.qrels, top, 10) == approx(pytrec(dataset.qrels, raw, 10))
    report = evaluate(dataset, ["local/bm25"], run=DATA / "bm25.run", k=3, cache=False)
    assert report.first_stage.per_query["Recall@3"] == approx({"q1": 1.0, "q2": 1.0, "q3": 0.0})


def test_bm25_over_the_corpus_is_the_first_stage_by_default() -> None:
    dataset = load_beir(BEIR)
    stage, top = candidates(dataset, 100)

    assert stage == "bm25s"
    assert top["q1"][0] == "d1"  # "reset" and "router", twice each
    assert set(top["q1"]) == {"d1", "d3", "d4"}  # only documents with a query word
    assert top["q3"] == ["d7"]  # no stemming: "bananas" is not "banana"
    assert list(dataset.queries) == ["q1", "q2", "q3"]  # q9 has no judgements
    assert candidates(dataset, 1)[1]["q1"] == ["d1"]


def test_beir_and_trec_files_load_the_same_dataset() -> None:
    beir = load_beir(BEIR)
    assert beir.corpus["d1"] == "Router reset Hold the reset button of the router for ten seconds."
    assert beir.corpus["d2"].startswith("Each invoice")  # empty title: the text alone
    trec = load_trec(
        corpus=DATA / "corpus.tsv", queries=DATA / "topics.txt", qrels=DATA / "qrels.txt"
    )
    assert (trec.queries, trec.qrels, trec.corpus) == (beir.queries, beir.qrels, beir.corpus)
    jsonl = load_dataset(
        BEIR / "corpus.jsonl", queries=DATA / "topics.txt", qrels=DATA / "qrels.txt"
    )
    assert jsonl.corpus == beir.corpus


def test_queries_as_tab_separated_lines(tmp_path: Path) -> None:
    queries = tmp_path / "queries.tsv"
    queries.write_text(
        "q1\thow to reset the router\nq2\twhen is an invoice due\nq3\tbanana bread recipe\n"
    )
    trec = load_dataset(DATA / "corpus.tsv", queries=queries, qrels=DATA / "qrels.txt")
    assert trec.queries == load_beir(BEIR).queries


def test_an_interrupted_run_goes_on_without_repeating_a_provider_call(
    cohere_env: FakeServer,
) -> None:
    cohere_env.fail(Reply(status=400, body={"message": "quota"}))  # one query fails
    first = evaluate(ROWS, [COHERE], concurrency=1)
    (model,) = first.models
    assert (model.failed, model.metrics) == (1, None)
    assert "quota" in (model.error or "")
    assert len(cohere_env.received) == 3

    second = evaluate(ROWS, [COHERE], concurrency=1)
    assert len(cohere_env.received) == 4  # only the failed query was sent again
    (model,) = second.models
    assert (model.failed, model.from_cache) == (0, 2)
    assert model.per_query == approx(RERANKED)

    third = evaluate(ROWS, [COHERE])
    assert len(cohere_env.received) == 4  # everything from the cache
    (model,) = third.models
    assert model.from_cache == 3
    assert model.metrics == second.models[0].metrics
    assert model.latency_p50_ms == second.models[0].latency_p50_ms  # as measured, kept
    assert model.cost_per_1k_queries == pytest.approx(2.0)  # what the answers were billed


@pytest.mark.anyio
async def test_a_cancelled_run_resumes_with_the_latencies_it_measured(
    cohere_env: FakeServer,
) -> None:
    def on_model(model: str, total: int) -> Any:
        def progress(done: int, count: int) -> None:
            if done == 2:
                task.cancel()  # as Ctrl-C does, two queries in

        return progress

    task = asyncio.ensure_future(aevaluate(ROWS, [COHERE], concurrency=1, on_model=on_model))
    with pytest.raises(asyncio.CancelledError):
        await task
    sent = len(cohere_env.received)

    report = await aevaluate(ROWS, [COHERE], concurrency=1)

    assert len(cohere_env.received) == sent + 1  # only the query that had no answer
    (model,) = report.models
    assert (model.from_cache, model.failed) == (2, 0)
    assert model.per_query == approx(RERANKED)
    assert model.documents_per_second is not None  # every query's latency is known


def test_the_cache_is_per_dataset_and_model_in_rerankits_cache_folder(cache_folder: Path) -> None:
    first = evaluate(BEIR, ["local/bm25"], k=10)
    second = evaluate(BEIR, ["local/bm25"], k=10)

    assert (cache_folder / "eval" / "beir-test" / "local_bm25.sqlite").is_file()
    assert (first.models[0].from_cache, second.models[0].from_cache) == (0, 3)
    assert second.models[0].metrics == first.models[0].metrics
    assert second.models[0].latency_p50_ms == first.models[0].latency_p50_ms


def test_a_cache_path_serves_every_model_and_no_cache_calls_afresh(
    tmp_path: Path, cohere_env: FakeServer
) -> None:
    path = tmp_path / "one.sqlite"
    evaluate(ROWS, [COHERE, "local/bm25"], cache=path)
    again = evaluate(ROWS, [COHERE, "local/bm25"], cache=path)
    assert [model.from_cache for model in again.models] == [3, 3]
    assert len(cohere_env.received) == 3
    evaluate(ROWS, [COHERE], cache=False)
    assert len(cohere_env.received) == 6


def test_a_quota_applies_to_each_models_provider(cohere_env: FakeServer) -> None:
    report = evaluate(ROWS, [COHERE], requests_per_minute=6000, cache=False)
    assert report.models[0].failed == 0
    with pytest.raises(ConfigurationError, match="requests_per_minute"):
        evaluate(ROWS, [COHERE], requests_per_minute=0, cache=False)


def test_the_report_as_json_table_and_markdown() -> None:
    report = evaluate(ROWS, ["local/bm25"], cache=False)
    data = report.to_dict()

    assert data["first_stage"] == "given order"
    assert list(data["models"]) == ["given order", "local/bm25"]
    row = data["models"]["local/bm25"]
    assert {"nDCG@10", "MRR@10", "Recall@100", "MAP", "p_value", "latency_p50_ms"} <= set(row)
    assert row["cost_per_1k_queries"] is None  # no price is known for local models
    lines = report.table().splitlines()
    assert lines[2].split()[:6] == ["model", "nDCG@10", "MRR@10", "Recall@100", "MAP", "p"]
    assert lines[4].startswith("given order")
    assert "| local/bm25 |" in report.markdown()
    assert isinstance(report, EvalReport)


@pytest.mark.anyio
async def test_evaluate_inside_an_event_loop_points_to_aevaluate() -> None:
    with pytest.raises(ConfigurationError, match="aevaluate"):
        evaluate(ROWS, ["local/bm25"], cache=False)
    report = await aevaluate(ROWS, ["local/bm25"], cache=False, limit=2)
    assert report.queries == 2


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"k": 0}, "k must be an int >= 1"),
        ({"models": []}, "models must be a non-empty list"),
        ({"models": "local/bm25"}, "models must be a non-empty list"),
        ({"limit": 0}, "limit"),
    ],
)
def test_bad_arguments(arguments: dict[str, Any], message: str) -> None:
    call = {"data": ROWS, "models": ["local/bm25"], "cache": False, **arguments}
    with pytest.raises(ConfigurationError, match=message):
        evaluate(**call)


MALFORMED = [
    (
        "rows.jsonl",
        '{"query": "q", "documents": ["a"], "relevant": [0]}\n{"query": \n',
        "line 2: invalid JSON",
    ),
    (
        "rows.jsonl",
        '{"query": "q", "documents": [], "relevant": []}\n',
        'line 1: "documents" must be',
    ),
    (
        "rows.jsonl",
        '{"query": "q", "documents": ["a"], "relevant": [3]}\n',
        'line 1: "relevant" index 3',
    ),
    (
        "rows.jsonl",
        '{"query": "q", "documents": ["a"], "relevant": {"0": "high"}}\n',
        "grade 'high'",
    ),
    ("rows.jsonl", '{"query": "q", "documents": [7], "relevant": [0]}\n', "line 1: each document"),
    (
        "rows.jsonl",
        '{"id": 1, "query": "q", "documents": ["a"], "relevant": []}\n' * 2,
        "line 2: duplicate id",
    ),
    ("rows.jsonl", "\n\n", "no rows"),
]


@pytest.mark.parametrize(("name", "content", "message"), MALFORMED)
def test_malformed_rows_name_the_file_and_line(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataError, match="rows.jsonl") as caught:
        evaluate(path, ["local/bm25"], cache=False)
    assert message in str(caught.value)


def beir_copy(tmp_path: Path, **files: str) -> Path:
    root = tmp_path / "set"
    (root / "qrels").mkdir(parents=True)
    for name in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv"):
        text = files.get(name.replace("/", "_").replace(".", "_"), (BEIR / name).read_text())
        (root / name).write_text(text)
    return root


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"qrels_test_tsv": "query-id\tcorpus-id\tscore\nq1\td1\n"}, "test.tsv, line 2: expected"),
        ({"qrels_test_tsv": "q1\td1\tvery\n"}, "test.tsv, line 1: relevance 'very'"),
        ({"corpus_jsonl": '{"_id": "d1", "text": "a"}\n{"text": "b"}\n'}, "corpus.jsonl, line 2"),
        ({"corpus_jsonl": '{"_id": "d1", "title": 3, "text": "a"}\n'}, '"title" must be'),
        (
            {"queries_jsonl": '{"_id": "q1", "text": "a"}\n'},
            "no text for judged queries ['q2', 'q3']",
        ),
        ({"corpus_jsonl": ""}, "corpus.jsonl: no entries"),
    ],
)
def test_malformed_beir_files_name_the_file_and_line(
    tmp_path: Path, files: dict[str, str], message: str
) -> None:
    with pytest.raises(DataError) as caught:
        evaluate(beir_copy(tmp_path, **files), ["local/bm25"], cache=False)
    assert message in str(caught.value)


def test_missing_and_malformed_trec_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        evaluate(tmp_path / "nothing", ["local/bm25"])
    with pytest.raises(DataError, match=r"test\.tsv: no such file"):
        load_beir(tmp_path)
    bad_run = tmp_path / "bad.run"
    bad_run.write_text("q1 Q0 d1 1 9.0 tag\nq1 Q0 d2 2 tag\n")
    with pytest.raises(
        DataError, match=r"bad\.run, line 2: expected 'qid Q0 docid rank score tag'"
    ):
        evaluate(BEIR, ["local/bm25"], run=bad_run)
    unknown = tmp_path / "unknown.run"
    unknown.write_text("q1 Q0 d99 1 9.0 tag\n")
    with pytest.raises(DataError, match="not in the corpus: \\['d99'\\]"):
        evaluate(BEIR, ["local/bm25"], run=unknown)
    topics = tmp_path / "topics.txt"
    topics.write_text("<top>\n<num> Number: 1\n<title>\n</top>\n")
    with pytest.raises(DataError, match=r"topics\.txt, line 1: a <top> block needs"):
        load_trec(corpus=DATA / "corpus.tsv", queries=topics, qrels=DATA / "qrels.txt")
    binary = tmp_path / "queries.tsv"
    binary.write_bytes(b"q1\t\xff\xfe\n")
    with pytest.raises(DataError, match="not UTF-8"):
        load_trec(corpus=DATA / "corpus.tsv", queries=binary, qrels=DATA / "qrels.txt")
    with pytest.raises(DataError, match="both queries= and qrels="):
        load_dataset(DATA / "corpus.tsv", qrels=DATA / "qrels.txt")
    with pytest.raises(DataError, match="cannot be combined"):
        evaluate(ROWS, ["local/bm25"], run=DATA / "bm25.run")


def test_a_missing_library_says_how_to_install_the_extra() -> None:
    from rerankit.eval._extra import import_extra

    with pytest.raises(ConfigurationError) as caught:
        import_extra("rerankit_no_such_library.sub", "plotting")
    message = str(caught.value)
    assert message.startswith("plotting needs rerankit_no_such_library: ")
    assert "pip install 'rerankit[eval]'" in message
    assert "pip install '.[eval]'" in message
