"""Evaluation data: a BEIR folder, TREC files, or JSON Lines of ``{query, documents, relevant}``.

Every loader gives a ``Dataset``; a malformed file raises ``DataError`` naming the file and line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from rerankit._errors import ConfigurationError

__all__ = [
    "DataError",
    "Dataset",
    "load_beir",
    "load_dataset",
    "load_rows",
    "load_trec",
    "read_trec_run",
]

Qrels = dict[str, dict[str, int]]
_Items = TypeVar("_Items", Qrels, dict[str, str])


class DataError(ConfigurationError):
    """An evaluation file is missing or malformed; the message names the file and line."""


class Dataset(msgspec.Struct, kw_only=True):
    """Queries to evaluate, their judgements and the documents' texts.

    ``queries`` holds only judged queries, in file order. ``candidates`` is set when the data
    brings its own first-stage ranking (JSON Lines rows); otherwise a run file or BM25 gives it.
    """

    name: str
    queries: dict[str, str]
    qrels: Qrels
    corpus: dict[str, str]
    candidates: dict[str, list[str]] | None = None


def load_dataset(
    data: str | os.PathLike[str],
    *,
    split: str = "test",
    queries: str | os.PathLike[str] | None = None,
    qrels: str | os.PathLike[str] | None = None,
) -> Dataset:
    """A BEIR folder (``data`` a directory), TREC files (``data`` the corpus, with ``queries``
    and ``qrels``), or JSON Lines rows (``data`` a file, alone)."""
    path = Path(data)
    if path.is_dir():
        if queries is not None or qrels is not None:
            raise DataError("queries= and qrels= go with a corpus file, not a BEIR folder")
        return load_beir(path, split=split)
    if not path.is_file():
        raise DataError(f"{path}: no such file or folder")
    if queries is None and qrels is None:
        return load_rows(path)
    if queries is None or qrels is None:
        raise DataError("TREC data needs both queries= and qrels= (and the corpus as data)")
    return load_trec(corpus=path, queries=Path(queries), qrels=Path(qrels))


def load_beir(folder: str | os.PathLike[str], *, split: str = "test") -> Dataset:
    """``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv`` of a BEIR folder."""
    root = Path(folder)
    judged = _read_qrels_tsv(root / "qrels" / f"{split}.tsv")
    texts = _read_jsonl_texts(root / "queries.jsonl", title=False)
    corpus = _read_jsonl_texts(root / "corpus.jsonl", title=True)
    return _dataset(f"{root.resolve().name}-{split}", texts, judged, corpus, root / "queries.jsonl")


def load_trec(
    *,
    corpus: str | os.PathLike[str],
    queries: str | os.PathLike[str],
    qrels: str | os.PathLike[str],
) -> Dataset:
    """TREC qrels (``qid 0 docid grade``), queries as a ``qid<TAB>text`` file or a TREC topics
    file (``<top>`` blocks; the ``<title>`` is the query), and a corpus as BEIR ``corpus.jsonl``
    lines or ``docid<TAB>text`` lines."""
    corpus_path, queries_path = Path(corpus), Path(queries)
    judged = _read_trec_qrels(Path(qrels))
    texts = _read_queries(queries_path)
    if corpus_path.suffix == ".jsonl":
        documents = _read_jsonl_texts(corpus_path, title=True)
    else:
        documents = _read_tsv_pairs(corpus_path, "docid<TAB>text")
    return _dataset(corpus_path.stem, texts, judged, documents, queries_path)


def load_rows(path: str | os.PathLike[str]) -> Dataset:
    """One ``{"query", "documents", "relevant"}`` object per line (``"id"`` optional).

    ``documents`` are the candidates in first-stage order: strings, or objects with ``text``
    (and ``title``). ``relevant`` lists the indices of the relevant documents, or maps an index
    (as a string) to its relevance grade.
    """
    source = Path(path)
    queries: dict[str, str] = {}
    judged: Qrels = {}
    corpus: dict[str, str] = {}
    candidates: dict[str, list[str]] = {}
    for number, line in _lines(source):
        row = _json(source, number, line)
        if not isinstance(row, dict):
            raise _bad(source, number, "expected a JSON object")
        qid = str(row.get("id", number))
        if qid in queries:
            raise _bad(source, number, f"duplicate id {qid!r}")
        query, documents = row.get("query"), row.get("documents")
        if not isinstance(query, str) or not query.strip():
            raise _bad(source, number, '"query" must be a non-empty string')
        if not isinstance(documents, list) or not documents:
            raise _bad(source, number, '"documents" must be a non-empty list')
        ids = [f"{qid}/{index}" for index in range(len(documents))]
        for docid, document in zip(ids, documents, strict=True):
            corpus[docid] = _document_text(source, number, document)
        queries[qid] = query
        candidates[qid] = ids
        judged[qid] = _row_relevance(source, number, row.get("relevant"), ids)
    if not queries:
        raise DataError(f"{source}: no rows")
    return Dataset(
        name=source.stem, queries=queries, qrels=judged, corpus=corpus, candidates=candidates
    )


def read_trec_run(path: str | os.PathLike[str]) -> dict[str, list[tuple[str, float]]]:
    """A TREC run (``qid Q0 docid rank score tag``): each query's ``(docid, score)`` pairs,
    ordered as trec_eval orders them (score descending, then docid descending)."""
    source = Path(path)
    run: dict[str, dict[str, float]] = {}
    for number, line in _lines(source):
        fields = line.split()
        if len(fields) != 6:
            raise _bad(source, number, "expected 'qid Q0 docid rank score tag'")
        try:
            score = float(fields[4])
        except ValueError:
            raise _bad(source, number, f"score {fields[4]!r} is not a number") from None
        ranked = run.setdefault(fields[0], {})
        if fields[2] in ranked:
            raise _bad(source, number, f"document {fields[2]!r} appears twice for {fields[0]!r}")
        ranked[fields[2]] = score
    return {
        qid: sorted(scores.items(), key=lambda item: (item[1], item[0]), reverse=True)
        for qid, scores in run.items()
    }


def _dataset(
    name: str, texts: dict[str, str], judged: Qrels, corpus: dict[str, str], queries_path: Path
) -> Dataset:
    missing = [qid for qid in judged if qid not in texts]
    if missing:
        raise DataError(f"{queries_path}: no text for judged queries {missing[:5]}")
    queries = {qid: text for qid, text in texts.items() if qid in judged}
    return Dataset(name=name, queries=queries, qrels=judged, corpus=corpus)


def _read_qrels_tsv(path: Path) -> Qrels:
    """BEIR qrels: a ``query-id  corpus-id  score`` header, then tab-separated rows."""
    judged: Qrels = {}
    for number, line in _lines(path):
        fields = line.rstrip("\r\n").split("\t")
        if number == 1 and fields[:2] == ["query-id", "corpus-id"]:
            continue
        if len(fields) != 3:
            raise _bad(path, number, "expected 'query-id<TAB>corpus-id<TAB>score'")
        judged.setdefault(fields[0], {})[fields[1]] = _grade(path, number, fields[2])
    return _nonempty(path, judged)


def _read_trec_qrels(path: Path) -> Qrels:
    judged: Qrels = {}
    for number, line in _lines(path):
        fields = line.split()
        if len(fields) != 4:
            raise _bad(path, number, "expected 'qid 0 docid grade'")
        judged.setdefault(fields[0], {})[fields[2]] = _grade(path, number, fields[3])
    return _nonempty(path, judged)


def _read_jsonl_texts(path: Path, *, title: bool) -> dict[str, str]:
    """``{"_id", "text"}`` lines; with ``title``, the title and text joined by a space, as
    BEIR does (the text alone when the title is empty)."""
    texts: dict[str, str] = {}
    for number, line in _lines(path):
        row = _json(path, number, line)
        if not isinstance(row, dict) or not isinstance(row.get("_id"), (str, int)):
            raise _bad(path, number, 'expected an object with "_id" and "text"')
        text = row.get("text")
        if not isinstance(text, str):
            raise _bad(path, number, '"text" must be a string')
        heading = row.get("title") if title else None
        if heading is not None and not isinstance(heading, str):
            raise _bad(path, number, '"title" must be a string')
        texts[str(row["_id"])] = f"{heading} {text}" if heading else text
    return _nonempty(path, texts)


def _read_queries(path: Path) -> dict[str, str]:
    try:
        head = path.read_text(encoding="utf-8", errors="replace")[:1000].lstrip()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    if head.lower().startswith("<top>"):
        return _read_topics(path)
    return _read_tsv_pairs(path, "qid<TAB>text")


_TOPIC = re.compile(r"<top>(.*?)</top>", re.S | re.I)
_NUM = re.compile(r"<num>\s*(?:Number:)?\s*(\S+)", re.I)
_TITLE = re.compile(r"<title>\s*(?:Topic:)?\s*(.*?)\s*(?:<|\Z)", re.S | re.I)


def _read_topics(path: Path) -> dict[str, str]:
    """TREC topics: ``<top> <num> Number: 401 <title> text ... </top>`` blocks."""
    text = path.read_text(encoding="utf-8")
    topics: dict[str, str] = {}
    for block in _TOPIC.finditer(text):
        line = text.count("\n", 0, block.start()) + 1
        num, title = _NUM.search(block.group(1)), _TITLE.search(block.group(1))
        if num is None or title is None or not title.group(1):
            raise _bad(path, line, "a <top> block needs a <num> and a non-empty <title>")
        topics[num.group(1)] = " ".join(title.group(1).split())
    return _nonempty(path, topics)


def _read_tsv_pairs(path: Path, shape: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for number, line in _lines(path):
        fields = line.rstrip("\r\n").split("\t")
        if len(fields) != 2 or not fields[0]:
            raise _bad(path, number, f"expected '{shape}'")
        pairs[fields[0]] = fields[1]
    return _nonempty(path, pairs)


def _row_relevance(path: Path, number: int, relevant: Any, ids: list[str]) -> dict[str, int]:
    if isinstance(relevant, list):
        grades = dict.fromkeys(relevant, 1)
    elif isinstance(relevant, dict):
        grades = {_index_key(key): grade for key, grade in relevant.items()}
    else:
        raise _bad(path, number, '"relevant" must be a list of indices or an index-to-grade map')
    judged: dict[str, int] = {}
    for index, grade in grades.items():
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(ids):
            raise _bad(path, number, f'"relevant" index {index!r} is not a document index')
        if isinstance(grade, bool) or not isinstance(grade, int):
            raise _bad(path, number, f'"relevant" grade {grade!r} is not an integer')
        judged[ids[index]] = grade
    return judged


def _index_key(key: str) -> int | str:
    return int(key) if key.isdigit() else key


def _document_text(path: Path, number: int, document: Any) -> str:
    if isinstance(document, str):
        return document
    if isinstance(document, dict) and isinstance(document.get("text"), str):
        title = document.get("title")
        return (
            f"{title} {document['text']}" if isinstance(title, str) and title else document["text"]
        )
    raise _bad(path, number, 'each document must be a string or an object with "text"')


def _grade(path: Path, number: int, field: str) -> int:
    try:
        return int(field)
    except ValueError:
        raise _bad(path, number, f"relevance {field!r} is not an integer") from None


def _json(path: Path, number: int, line: str) -> Any:
    try:
        return msgspec.json.decode(line)
    except msgspec.DecodeError as exc:
        raise _bad(path, number, f"invalid JSON ({exc})") from None


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """Non-blank lines with their 1-based numbers."""
    try:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    yield number, line
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None


def _nonempty(path: Path, items: _Items) -> _Items:
    if not items:
        raise DataError(f"{path}: no entries")
    return items


def _bad(path: Path, number: int, message: str) -> DataError:
    return DataError(f"{path}, line {number}: {message}")
