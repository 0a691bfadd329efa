"""A BERT model in ONNX, built here: tiny with random weights, or from a real checkpoint.

The local neural tests need ONNX models without downloading any, so this module builds them with
the ``onnx`` package: the graph of Hugging Face's ``BertModel`` (embeddings, post-layer-norm
self-attention blocks with erf GELU) with an optional ``BertForSequenceClassification`` head
(pooler + classifier), from weights named as in a Hugging Face checkpoint, with variants of its
inputs (int32, position_ids) that rerankit must feed. ``tiny_bert_dir`` writes a model directory
with random weights and a tiny WordPiece tokenizer. The tests below check the graph against a
plain numpy forward pass of the same weights; rerankit's own converter of real checkpoints
(``rerankit.providers._bert_graph``) is tested in test_local_convert.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

np = pytest.importorskip("numpy")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("tokenizers")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

Weights = dict[str, Any]

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
_WORDS = (
    "the a an of to and in is on for with how do i my can what where why when you your "
    "password reset account login email sign settings click open page help invoice bill "
    "payment monthly refund card weather rain sun cold hot bread bake oven flour dough yeast "
    "football goal match team stock market price share gpu model train data fast slow "
    "one two three four five six seven eight nine ten word more text long short"
)
WORDS = _WORDS.split()
VOCAB = SPECIAL + WORDS + ["##s", "##ing", "##ed"]


# --------------------------------------------------------------------------- weights


def tiny_weights(
    *,
    vocab_size: int = len(VOCAB),
    hidden: int = 32,
    layers: int = 2,
    intermediate: int = 64,
    positions: int = 64,
    num_labels: int | None = 1,
    seed: int = 0,
) -> Weights:
    """Random weights with Hugging Face names (``Linear`` weights are ``[out, in]``)."""
    rng = np.random.default_rng(seed)

    def normal(*shape: int, scale: float = 0.2) -> Any:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    weights: Weights = {
        "embeddings.word_embeddings.weight": normal(vocab_size, hidden),
        "embeddings.position_embeddings.weight": normal(positions, hidden),
        "embeddings.token_type_embeddings.weight": normal(2, hidden),
        "embeddings.LayerNorm.weight": 1 + normal(hidden, scale=0.05),
        "embeddings.LayerNorm.bias": normal(hidden, scale=0.05),
    }
    for i in range(layers):
        p = f"encoder.layer.{i}."
        for name in ("attention.self.query", "attention.self.key", "attention.self.value"):
            weights[p + name + ".weight"] = normal(hidden, hidden)
            weights[p + name + ".bias"] = normal(hidden, scale=0.05)
        weights[p + "attention.output.dense.weight"] = normal(hidden, hidden)
        weights[p + "attention.output.dense.bias"] = normal(hidden, scale=0.05)
        weights[p + "intermediate.dense.weight"] = normal(intermediate, hidden)
        weights[p + "intermediate.dense.bias"] = normal(intermediate, scale=0.05)
        weights[p + "output.dense.weight"] = normal(hidden, intermediate)
        weights[p + "output.dense.bias"] = normal(hidden, scale=0.05)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            weights[p + norm + ".weight"] = 1 + normal(hidden, scale=0.05)
            weights[p + norm + ".bias"] = normal(hidden, scale=0.05)
    if num_labels is not None:
        weights["pooler.dense.weight"] = normal(hidden, hidden)
        weights["pooler.dense.bias"] = normal(hidden, scale=0.05)
        weights["classifier.weight"] = normal(num_labels, hidden, scale=1.0)
        weights["classifier.bias"] = normal(num_labels, scale=0.1)
    return weights


# --------------------------------------------------------------------------- the ONNX graph


def bert_onnx(
    weights: Weights,
    *,
    heads: int,
    eps: float = 1e-12,
    int32: bool = False,
    position_input: bool = False,
) -> Any:
    """The ONNX graph of ``BertModel`` (+ the classification head when its weights are given).

    ``int32``: the inputs are int32, not int64; ``position_input``: ``position_ids`` is an input.
    """
    nodes: list[Any] = []
    inits: list[Any] = []
    count = [0]

    def const(name: str, value: Any) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(op: str, inputs: list[str], **attrs: Any) -> str:
        count[0] += 1
        out = f"{op.lower()}_{count[0]}"
        nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def linear(x: str, prefix: str) -> str:
        w = const(prefix + ".weight", weights[prefix + ".weight"].T.copy())
        return node(
            "Add", [node("MatMul", [x, w]), const(prefix + ".bias", weights[prefix + ".bias"])]
        )

    def layer_norm(x: str, prefix: str) -> str:
        return node(
            "LayerNormalization",
            [
                x,
                const(prefix + ".weight", weights[prefix + ".weight"]),
                const(prefix + ".bias", weights[prefix + ".bias"]),
            ],
            axis=-1,
            epsilon=eps,
        )

    hidden = weights["embeddings.word_embeddings.weight"].shape[1]
    head_dim = hidden // heads
    seq_len = node(
        "Gather", [node("Shape", ["input_ids"]), const("one_i", np.array(1, np.int64))], axis=0
    )
    positions = node(
        "Range",
        [const("zero_i", np.array(0, np.int64)), seq_len, const("step_i", np.array(1, np.int64))],
    )
    if position_input:
        positions = "position_ids"
    x = node(
        "Add",
        [
            node(
                "Add",
                [
                    node(
                        "Gather",
                        [const("word", weights["embeddings.word_embeddings.weight"]), "input_ids"],
                    ),
                    node(
                        "Gather",
                        [const("pos", weights["embeddings.position_embeddings.weight"]), positions],
                    ),
                ],
            ),
            node(
                "Gather",
                [
                    const("type", weights["embeddings.token_type_embeddings.weight"]),
                    "token_type_ids",
                ],
            ),
        ],
    )
    x = layer_norm(x, "embeddings.LayerNorm")
    mask = node("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    mask = node("Unsqueeze", [mask, const("axes12", np.array([1, 2], np.int64))])
    mask = node(
        "Mul",
        [
            node("Sub", [const("one_f", np.array(1.0, np.float32)), mask]),
            const("neg", np.array(-1e4, np.float32)),
        ],
    )
    split = const("split_shape", np.array([0, 0, heads, head_dim], np.int64))
    merge = const("merge_shape", np.array([0, 0, hidden], np.int64))
    scale = const("scale", np.array(1 / math.sqrt(head_dim), np.float32))
    layer = 0
    while f"encoder.layer.{layer}.attention.self.query.weight" in weights:
        p = f"encoder.layer.{layer}."
        q = node(
            "Transpose",
            [node("Reshape", [linear(x, p + "attention.self.query"), split])],
            perm=[0, 2, 1, 3],
        )
        k = node(
            "Transpose",
            [node("Reshape", [linear(x, p + "attention.self.key"), split])],
            perm=[0, 2, 3, 1],
        )
        v = node(
            "Transpose",
            [node("Reshape", [linear(x, p + "attention.self.value"), split])],
            perm=[0, 2, 1, 3],
        )
        scores = node("Add", [node("Mul", [node("MatMul", [q, k]), scale]), mask])
        context = node("MatMul", [node("Softmax", [scores], axis=-1), v])
        context = node("Reshape", [node("Transpose", [context], perm=[0, 2, 1, 3]), merge])
        x = layer_norm(
            node("Add", [linear(context, p + "attention.output.dense"), x]),
            p + "attention.output.LayerNorm",
        )
        inner = linear(x, p + "intermediate.dense")
        gelu = node(
            "Mul",
            [
                node("Mul", [inner, const(f"half{layer}", np.array(0.5, np.float32))]),
                node(
                    "Add",
                    [
                        node(
                            "Erf",
                            [
                                node(
                                    "Mul",
                                    [
                                        inner,
                                        const(
                                            f"rsqrt2_{layer}",
                                            np.array(1 / math.sqrt(2), np.float32),
                                        ),
                                    ],
                                )
                            ],
                        ),
                        const(f"one{layer}", np.array(1.0, np.float32)),
                    ],
                ),
            ],
        )
        x = layer_norm(node("Add", [linear(gelu, p + "output.dense"), x]), p + "output.LayerNorm")
        layer += 1
    outputs = [
        helper.make_tensor_value_info(
            "last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", hidden]
        )
    ]
    nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"]))
    if "classifier.weight" in weights:
        first = node("Gather", [x, const("zero_token", np.array(0, np.int64))], axis=1)
        pooled = node("Tanh", [linear(first, "pooler.dense")])
        labels = weights["classifier.weight"].shape[0]
        nodes.append(helper.make_node("Identity", [linear(pooled, "classifier")], ["logits"]))
        outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", labels])]
    inputs = [
        helper.make_tensor_value_info(
            name, TensorProto.INT32 if int32 else TensorProto.INT64, ["batch", "sequence"]
        )
        for name in ("input_ids", "attention_mask", "token_type_ids")
        + (("position_ids",) if position_input else ())
    ]
    graph = helper.make_graph(nodes, "bert", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def bert_numpy(
    weights: Weights, ids: Any, mask: Any, types: Any, *, heads: int, eps: float = 1e-12
) -> Any:
    """The same model as plain numpy, written independently of the graph: logits or states."""
    from math import erf

    def ln(x: Any, prefix: str) -> Any:
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + eps) * weights[prefix + ".weight"] + weights[
            prefix + ".bias"
        ]

    def lin(x: Any, prefix: str) -> Any:
        return x @ weights[prefix + ".weight"].T + weights[prefix + ".bias"]

    batch, seq = ids.shape
    x = (
        weights["embeddings.word_embeddings.weight"][ids]
        + weights["embeddings.position_embeddings.weight"][np.arange(seq)][None]
        + weights["embeddings.token_type_embeddings.weight"][types]
    )
    x = ln(x, "embeddings.LayerNorm")
    hidden = x.shape[-1]
    d = hidden // heads
    bias = (1.0 - mask[:, None, None, :].astype(np.float32)) * -1e4
    layer = 0
    while f"encoder.layer.{layer}.attention.self.query.weight" in weights:
        p = f"encoder.layer.{layer}."
        q, k, v = (
            lin(x, p + f"attention.self.{n}").reshape(batch, seq, heads, d).transpose(0, 2, 1, 3)
            for n in ("query", "key", "value")
        )
        s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d) + bias
        s = np.exp(s - s.max(-1, keepdims=True))
        s = s / s.sum(-1, keepdims=True)
        ctx = (s @ v).transpose(0, 2, 1, 3).reshape(batch, seq, hidden)
        x = ln(lin(ctx, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
        inner = lin(x, p + "intermediate.dense")
        gelu = 0.5 * inner * (1 + np.vectorize(erf)(inner / math.sqrt(2)))
        x = ln(lin(gelu, p + "output.dense") + x, p + "output.LayerNorm")
        layer += 1
    if "classifier.weight" in weights:
        return lin(np.tanh(lin(x[:, 0], "pooler.dense")), "classifier")
    return x


# --------------------------------------------------------------------------- model directories


def tiny_tokenizer() -> Any:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    tokenizer = Tokenizer(models.WordPiece({t: i for i, t in enumerate(VOCAB)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", VOCAB.index("[CLS]")), ("[SEP]", VOCAB.index("[SEP]"))],
    )
    return tokenizer


def tiny_bert_dir(
    directory: Path,
    *,
    num_labels: int | None = 1,
    heads: int = 4,
    layout: str = "model.onnx",
    config: Mapping[str, Any] | None = None,
    seed: int = 0,
    graph: Mapping[str, bool] | None = None,
    **shape: int,
) -> Weights:
    """Write a tiny model directory (ONNX file at ``layout``); returns its weights."""
    weights = tiny_weights(num_labels=num_labels, seed=seed, **shape)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / layout).parent.mkdir(parents=True, exist_ok=True)
    onnx.save(bert_onnx(weights, heads=heads, **(graph or {})), str(directory / layout))
    tiny_tokenizer().save(str(directory / "tokenizer.json"))
    hidden = weights["embeddings.word_embeddings.weight"].shape[1]
    settings: dict[str, Any] = {
        "architectures": ["BertForSequenceClassification" if num_labels else "BertModel"],
        "model_type": "bert",
        "hidden_size": hidden,
        "num_attention_heads": heads,
        "max_position_embeddings": weights["embeddings.position_embeddings.weight"].shape[0],
        "pad_token_id": 0,
        "vocab_size": len(VOCAB),
    }
    if num_labels:
        settings["id2label"] = {str(i): f"LABEL_{i}" for i in range(num_labels)}
    settings.update(config or {})
    (directory / "config.json").write_text(json.dumps(settings))
    return weights


# --------------------------------------------------------------------------- tests of the builder


def _run(path: Path, ids: Any, mask: Any, types: Any) -> Any:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    return session.run(None, feeds)[0]


@pytest.mark.parametrize("num_labels", [1, 2, None])
def test_graph_matches_a_numpy_forward_pass(tmp_path: Path, num_labels: int | None) -> None:
    weights = tiny_bert_dir(tmp_path, num_labels=num_labels, heads=4)
    rng = np.random.default_rng(1)
    ids = rng.integers(5, len(VOCAB), size=(3, 11)).astype(np.int64)
    mask = np.ones_like(ids)
    mask[1, 7:] = 0
    types = np.zeros_like(ids)
    types[:, 5:] = 1
    got = _run(tmp_path / "model.onnx", ids, mask, types)
    want = bert_numpy(weights, ids, mask, types, heads=4)
    assert got.shape == want.shape
    assert np.allclose(got, want, atol=1e-4)


def test_padding_does_not_change_the_unpadded_rows(tmp_path: Path) -> None:
    tiny_bert_dir(tmp_path)
    ids = np.array([[2, 10, 11, 3, 12, 3]], np.int64)
    ones = np.ones_like(ids)
    alone = _run(tmp_path / "model.onnx", ids, ones, np.zeros_like(ids))
    padded_ids = np.concatenate([ids, np.zeros((1, 4), np.int64)], axis=1)
    mask = np.concatenate([ones, np.zeros((1, 4), np.int64)], axis=1)
    padded = _run(tmp_path / "model.onnx", padded_ids, mask, np.zeros_like(padded_ids))
    assert np.allclose(alone, padded, atol=1e-5)
