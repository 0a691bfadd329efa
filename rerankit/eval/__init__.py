"""Choosing a reranker: quality, latency and cost of models side by side on your data.

    from rerankit.eval import evaluate
    report = evaluate("datasets/scifact", ["local/bm25", "cohere/rerank-v3.5"], k=100)
    print(report.table())

Needs the ``eval`` extra (``pip install 'rerankit[eval]'``, or ``pip install '.[eval]'`` in a
checkout): ir-measures for the metrics, scipy for the significance test, bm25s for the first
stage, matplotlib for plots.
"""

from rerankit._settings import cache_home as cache_dir
from rerankit.eval._data import (
    DataError,
    Dataset,
    load_beir,
    load_dataset,
    load_rows,
    load_trec,
    read_trec_run,
)
from rerankit.eval._evaluate import aevaluate, evaluate
from rerankit.eval._plot import plot
from rerankit.eval._report import EvalReport, ModelReport

__all__ = [
    "DataError",
    "Dataset",
    "EvalReport",
    "ModelReport",
    "aevaluate",
    "cache_dir",
    "evaluate",
    "load_beir",
    "load_dataset",
    "load_rows",
    "load_trec",
    "plot",
    "read_trec_run",
]
