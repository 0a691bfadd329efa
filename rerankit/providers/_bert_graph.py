"""The ONNX graph of a BERT-family encoder, built from its weights without PyTorch.

Covers Hugging Face's ``BertModel`` and ``RobertaModel`` / ``XLMRobertaModel`` (post-layer-norm
self-attention blocks with erf GELU, absolute positions), with the sequence-classification head
when its weights are present: BERT's pooler + classifier, or RoBERTa's dense + out_proj. Also a
plain numpy forward pass of the same model, written independently, that checks the graph.

Importing this module imports numpy and onnx; it is imported only to convert a model.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rerankit._errors import ConfigurationError

try:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError as exc:  # onnx is in the local extra
    from rerankit._install import install_hint

    raise ConfigurationError(
        f"converting weights to ONNX needs onnx and numpy ({exc.name} could not be "
        f"imported): {install_hint('local')}"
    ) from exc

__all__ = ["Architecture", "build_graph", "forward", "read_safetensors"]

Weights = dict[str, Any]

BERT_TYPES = frozenset({"bert"})
ROBERTA_TYPES = frozenset({"roberta", "xlm-roberta", "camembert"})
SUPPORTED_TYPES = BERT_TYPES | ROBERTA_TYPES
_PREFIXES = ("bert.", "roberta.", "model.")
_DTYPES = {"F32": "<f4", "F16": "<f2", "F64": "<f8"}


@dataclass(frozen=True)
class Architecture:
    """What the graph needs from ``config.json``."""

    roberta: bool
    heads: int
    eps: float
    pad_id: int

    @classmethod
    def from_config(cls, config: Mapping[str, Any], where: str) -> Architecture:
        model_type = config.get("model_type")
        if model_type not in SUPPORTED_TYPES:
            raise ConfigurationError(
                f"{where}: rerankit converts BERT, RoBERTa and XLM-RoBERTa weights to ONNX, "
                f"not {model_type!r}"
            )
        act = config.get("hidden_act", "gelu")
        positions = config.get("position_embedding_type", "absolute")
        if act != "gelu" or positions != "absolute":
            raise ConfigurationError(
                f"{where}: rerankit converts models with hidden_act='gelu' and absolute "
                f"positions, not hidden_act={act!r}, position_embedding_type={positions!r}"
            )
        roberta = model_type in ROBERTA_TYPES
        return cls(
            roberta=roberta,
            heads=int(config["num_attention_heads"]),
            eps=float(config.get("layer_norm_eps", 1e-5 if roberta else 1e-12)),
            pad_id=int(config.get("pad_token_id", 1 if roberta else 0)),
        )


def read_safetensors(path: Path) -> Weights:
    """The tensors of a ``.safetensors`` file as float32 arrays, without the model prefix."""
    try:
        return _read_safetensors(path)
    except (OSError, ValueError, KeyError, TypeError, struct.error) as exc:
        raise ConfigurationError(f"cannot read the weights {path}: {exc!r}") from exc


def _read_safetensors(path: Path) -> Weights:
    data = path.read_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + size])
    weights: Weights = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        raw = data[8 + size + start : 8 + size + end]
        if info["dtype"] == "BF16":  # the upper half of a float32
            array = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
        elif info["dtype"] in _DTYPES:
            array = np.frombuffer(raw, _DTYPES[info["dtype"]]).astype(np.float32)
        else:
            continue  # integer buffers such as position_ids
        for prefix in _PREFIXES:
            if name.startswith(prefix):
                name = name[len(prefix) :]
                break
        weights[name] = array.reshape(info["shape"])
    return weights


def head(weights: Weights) -> str | None:
    """The classification head the weights carry: ``"bert"``, ``"roberta"`` or ``None``."""
    if "classifier.out_proj.weight" in weights:
        return "roberta"
    if "classifier.weight" in weights:
        return "bert"
    return None


class _Graph:
    """Nodes and initializers, added in order."""

    def __init__(self, weights: Weights) -> None:
        self.weights = weights
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.count = 0

    def const(self, value: Any, name: str | None = None) -> str:
        self.count += 1
        name = name or f"const_{self.count}"
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], **attrs: Any) -> str:
        self.count += 1
        out = f"{op.lower()}_{self.count}"
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def linear(self, x: str, prefix: str) -> str:
        weight = self.const(self.weights[prefix + ".weight"].T.copy(), prefix + ".weight")
        bias = self.const(self.weights[prefix + ".bias"], prefix + ".bias")
        return self.node("Add", [self.node("MatMul", [x, weight]), bias])

    def layer_norm(self, x: str, prefix: str, eps: float) -> str:
        scale = self.const(self.weights[prefix + ".weight"], prefix + ".weight")
        bias = self.const(self.weights[prefix + ".bias"], prefix + ".bias")
        return self.node("LayerNormalization", [x, scale, bias], axis=-1, epsilon=eps)

    def gelu(self, x: str) -> str:
        erf = self.node("Erf", [self.node("Mul", [x, self.const(np.float32(1 / math.sqrt(2)))])])
        half = self.node("Mul", [x, self.const(np.float32(0.5))])
        return self.node("Mul", [half, self.node("Add", [erf, self.const(np.float32(1.0))])])


def build_graph(weights: Weights, arch: Architecture) -> Any:
    """The ONNX model: ``logits`` with a classification head, else ``last_hidden_state``."""
    g = _Graph(weights)
    types = weights["embeddings.token_type_embeddings.weight"]
    x = g.node(
        "Add",
        [
            g.node("Gather", [g.const(weights["embeddings.word_embeddings.weight"]), "input_ids"]),
            g.node(
                "Gather",
                [g.const(weights["embeddings.position_embeddings.weight"]), _positions(g, arch)],
            ),
        ],
    )
    if types.shape[0] > 1:
        x = g.node("Add", [x, g.node("Gather", [g.const(types), "token_type_ids"])])
    else:  # RoBERTa-style: one token type, so no token_type_ids input
        x = g.node("Add", [x, g.const(types[0])])
    x = g.layer_norm(x, "embeddings.LayerNorm", arch.eps)
    mask = g.node("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    mask = g.node("Unsqueeze", [mask, g.const(np.array([1, 2], np.int64))])
    mask = g.node(
        "Mul", [g.node("Sub", [g.const(np.float32(1.0)), mask]), g.const(np.float32(-1e4))]
    )
    layer = 0
    while f"encoder.layer.{layer}.attention.self.query.weight" in weights:
        x = _layer(g, x, mask, f"encoder.layer.{layer}.", arch)
        layer += 1
    hidden = types.shape[1]
    kind = head(weights)
    if kind is None:
        g.nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"]))
        output = helper.make_tensor_value_info(
            "last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", hidden]
        )
    else:
        first = g.node("Gather", [x, g.const(np.array(0, np.int64))], axis=1)
        if kind == "bert":
            logits = g.linear(g.node("Tanh", [g.linear(first, "pooler.dense")]), "classifier")
        else:
            dense = g.node("Tanh", [g.linear(first, "classifier.dense")])
            logits = g.linear(dense, "classifier.out_proj")
        g.nodes.append(helper.make_node("Identity", [logits], ["logits"]))
        output = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "labels"])
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if types.shape[0] > 1 else [])
    inputs = [
        helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "sequence"])
        for name in names
    ]
    graph = helper.make_graph(g.nodes, "encoder", inputs, [output], g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _positions(g: _Graph, arch: Architecture) -> str:
    if arch.roberta:  # positions count the non-padding tokens, after the padding id
        real = g.node(
            "Cast",
            [g.node("Not", [g.node("Equal", ["input_ids", g.const(np.int64(arch.pad_id))])])],
            to=TensorProto.INT64,
        )
        counted = g.node("Mul", [g.node("CumSum", [real, g.const(np.int64(1))]), real])
        return g.node("Add", [counted, g.const(np.int64(arch.pad_id))])
    length = g.node("Gather", [g.node("Shape", ["input_ids"]), g.const(np.int64(1))], axis=0)
    return g.node("Range", [g.const(np.int64(0)), length, g.const(np.int64(1))])


def _layer(g: _Graph, x: str, mask: str, p: str, arch: Architecture) -> str:
    hidden = g.weights[p + "attention.self.query.weight"].shape[0]
    size = hidden // arch.heads
    split = g.const(np.array([0, 0, arch.heads, size], np.int64))

    def heads(name: str, perm: list[int]) -> str:
        shaped = g.node("Reshape", [g.linear(x, p + f"attention.self.{name}"), split])
        return g.node("Transpose", [shaped], perm=perm)

    q, k, v = heads("query", [0, 2, 1, 3]), heads("key", [0, 2, 3, 1]), heads("value", [0, 2, 1, 3])
    scale = g.const(np.float32(1 / math.sqrt(size)))
    scores = g.node("Add", [g.node("Mul", [g.node("MatMul", [q, k]), scale]), mask])
    context = g.node("MatMul", [g.node("Softmax", [scores], axis=-1), v])
    merged = g.node(
        "Reshape",
        [
            g.node("Transpose", [context], perm=[0, 2, 1, 3]),
            g.const(np.array([0, 0, hidden], np.int64)),
        ],
    )
    attended = g.node("Add", [g.linear(merged, p + "attention.output.dense"), x])
    x = g.layer_norm(attended, p + "attention.output.LayerNorm", arch.eps)
    inner = g.gelu(g.linear(x, p + "intermediate.dense"))
    return g.layer_norm(
        g.node("Add", [g.linear(inner, p + "output.dense"), x]), p + "output.LayerNorm", arch.eps
    )


def forward(weights: Weights, arch: Architecture, ids: Any, mask: Any, types: Any) -> Any:
    """The same model in plain numpy (float64): logits, or the last hidden states."""
    from math import erf

    w = {name: value.astype(np.float64) for name, value in weights.items()}

    def ln(x: Any, prefix: str) -> Any:
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + arch.eps) * w[prefix + ".weight"] + w[prefix + ".bias"]

    def lin(x: Any, prefix: str) -> Any:
        return x @ w[prefix + ".weight"].T + w[prefix + ".bias"]

    batch, seq = ids.shape
    if arch.roberta:
        real = (ids != arch.pad_id).astype(np.int64)
        positions = np.cumsum(real, axis=1) * real + arch.pad_id
    else:
        positions = np.broadcast_to(np.arange(seq), ids.shape)
    table = w["embeddings.token_type_embeddings.weight"]
    x = (
        w["embeddings.word_embeddings.weight"][ids]
        + w["embeddings.position_embeddings.weight"][positions]
    )
    x = x + (table[types] if table.shape[0] > 1 else table[0])
    x = ln(x, "embeddings.LayerNorm")
    hidden = x.shape[-1]
    d = hidden // arch.heads
    bias = (1.0 - mask[:, None, None, :]) * -1e4
    layer = 0
    while f"encoder.layer.{layer}.attention.self.query.weight" in w:
        p = f"encoder.layer.{layer}."
        q, k, v = (
            lin(x, p + f"attention.self.{n}")
            .reshape(batch, seq, arch.heads, d)
            .transpose(0, 2, 1, 3)
            for n in ("query", "key", "value")
        )
        s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d) + bias
        s = np.exp(s - s.max(-1, keepdims=True))
        ctx = (s / s.sum(-1, keepdims=True) @ v).transpose(0, 2, 1, 3).reshape(batch, seq, hidden)
        x = ln(lin(ctx, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
        inner = lin(x, p + "intermediate.dense")
        gelu = 0.5 * inner * (1 + np.vectorize(erf)(inner / math.sqrt(2)))
        x = ln(lin(gelu, p + "output.dense") + x, p + "output.LayerNorm")
        layer += 1
    kind = head(weights)
    if kind == "bert":
        return lin(np.tanh(lin(x[:, 0], "pooler.dense")), "classifier")
    if kind == "roberta":
        return lin(np.tanh(lin(x[:, 0], "classifier.dense")), "classifier.out_proj")
    return x


def check_model(model: Any) -> None:
    """onnx's structural check of an in-memory model (which must be under 2 GB)."""
    onnx.checker.check_model(model)
