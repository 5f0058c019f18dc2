"""The tree arrays of an exported model, read from its ONNX TreeEnsemble operator.

Every family (skl2onnx forests, onnxmltools boosters) exports one TreeEnsembleClassifier, so
routing rows and explaining scores work from the served file alone, whatever the family.
`nodes_hitrates` carries each node's cover (the share of the fit rows reaching it), written
at export: it is what path-dependent TreeSHAP needs and what onnxruntime ignores.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import numpy_helper

from .schema import N_FEATURES

TREE_OPS = {"TreeEnsembleClassifier"}
# The split modes the exporters write, coded as TreeArrays.mode; NaN-aware and equality modes
# never occur for these models' float inputs.
MODE_CODES = {b"LEAF": 0, b"BRANCH_LEQ": 1, b"BRANCH_LT": 2, b"BRANCH_GTE": 3, b"BRANCH_GT": 4}


class UnsupportedModel(ValueError):
    """The ONNX graph is not one tree ensemble over (a selection of) the input columns."""


@dataclass(frozen=True)
class TreeArrays:
    """All trees' nodes, indexed as in the ONNX attributes (children as positions)."""

    feature: NDArray[np.intp]  # input column tested (after the graph's column selection)
    threshold: NDArray[np.float64]
    mode: NDArray[np.int8]  # 0 leaf, 1 <=, 2 <, 3 >=, 4 >
    true_child: NDArray[np.intp]
    false_child: NDArray[np.intp]
    value: NDArray[np.float64]  # leaf weight of the fraud score, 0 for branches
    roots: NDArray[np.intp]
    cover: NDArray[np.float64]  # nodes_hitrates
    base: float  # added to the trees' sum before the transform
    logistic: bool  # the fraud probability is sigmoid(raw), else raw itself

    @property
    def is_leaf(self) -> NDArray[np.bool_]:
        return np.asarray(self.mode == 0)


def _attributes(node: onnx.NodeProto) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for attribute in node.attribute:
        value = onnx.helper.get_attribute_value(attribute)
        name = attribute.name.removesuffix("_as_tensor")
        values[name] = (
            numpy_helper.to_array(value) if isinstance(value, onnx.TensorProto) else value
        )
    return values


def _tree_node(graph: onnx.GraphProto) -> tuple[onnx.NodeProto, NDArray[np.intp]]:
    """The graph's one tree ensemble and the input column behind each of its features."""
    trees = [n for n in graph.node if n.op_type in TREE_OPS]
    if len(trees) != 1:
        raise UnsupportedModel(f"expected one tree ensemble, found {len(trees)}")
    tree = trees[0]
    if tree.input[0] == graph.input[0].name:
        return tree, np.arange(N_FEATURES)
    producers = {out: n for n in graph.node for out in n.output}
    select = producers.get(tree.input[0])
    constants = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    if select is None or select.op_type not in {"ArrayFeatureExtractor", "Gather"}:
        raise UnsupportedModel("the tree ensemble reads something other than input columns")
    if select.input[0] != graph.input[0].name or select.input[1] not in constants:
        raise UnsupportedModel("the column selection is not a constant one")
    return tree, np.asarray(constants[select.input[1]], dtype=np.intp).ravel()


def read_tree_arrays(onnx_bytes: bytes) -> TreeArrays:
    """The trees of an exported model; UnsupportedModel for any other graph."""
    graph = onnx.load_from_string(onnx_bytes).graph
    node, columns = _tree_node(graph)
    a = _attributes(node)
    modes = list(a["nodes_modes"])
    if not set(modes) <= set(MODE_CODES):
        raise UnsupportedModel(f"unsupported split modes {set(modes) - set(MODE_CODES)}")
    transform = a.get("post_transform", b"NONE")
    if transform not in (b"NONE", b"LOGISTIC"):
        raise UnsupportedModel(f"unsupported post_transform {transform!r}")
    trees = np.asarray(a["nodes_treeids"], dtype=np.int64)
    ids = np.asarray(a["nodes_nodeids"], dtype=np.int64)
    position = {
        (t, n): i for i, (t, n) in enumerate(zip(trees.tolist(), ids.tolist(), strict=True))
    }
    mode = np.array([MODE_CODES[m] for m in modes], dtype=np.int8)
    leaf = mode == 0

    def children(name: str) -> NDArray[np.intp]:
        targets = a[name]
        return np.array(
            [
                i if leaf[i] else position[(t, c)]
                for i, (t, c) in enumerate(zip(trees.tolist(), targets, strict=True))
            ],
            dtype=np.intp,
        )

    value = np.zeros(len(modes))
    class_ids = np.asarray(a["class_ids"])
    weights = np.asarray(a["class_weights"], dtype=np.float64)
    # Binary models score one class (skl2onnx and onnxmltools: id 0 carries the fraud score);
    # with two, class 1's weights are the fraud score.
    scored = class_ids == (1 if len(set(class_ids.tolist())) > 1 else class_ids[0])
    for t, n, w in zip(
        np.asarray(a["class_treeids"])[scored].tolist(),
        np.asarray(a["class_nodeids"])[scored].tolist(),
        weights[scored].tolist(),
        strict=True,
    ):
        value[position[(t, n)]] += w
    is_root = np.ones(len(modes), dtype=bool)
    true_child, false_child = children("nodes_truenodeids"), children("nodes_falsenodeids")
    is_root[true_child[~leaf]] = False
    is_root[false_child[~leaf]] = False
    feature_ids = np.asarray(a["nodes_featureids"], dtype=np.intp)
    if feature_ids[~leaf].size and feature_ids[~leaf].max() >= len(columns):
        raise UnsupportedModel("a split tests a feature outside the column selection")
    hitrates = a.get("nodes_hitrates")
    base = a.get("base_values")
    return TreeArrays(
        feature=np.where(leaf, 0, columns[np.where(leaf, 0, feature_ids)]),
        threshold=np.asarray(a["nodes_values"], dtype=np.float32).astype(np.float64),
        mode=mode,
        true_child=true_child,
        false_child=false_child,
        value=value,
        roots=np.flatnonzero(is_root),
        cover=np.ones(len(modes)) if hitrates is None else np.asarray(hitrates, np.float64),
        base=float(np.asarray(base).ravel()[0]) if base is not None and len(base) else 0.0,
        logistic=transform == b"LOGISTIC",
    )


def goes_true(
    mode: NDArray[np.int8], x: NDArray[np.float64], t: NDArray[np.float64]
) -> NDArray[np.bool_]:
    """Whether each value takes its node's true branch."""
    return np.select([mode == 1, mode == 2, mode == 3], [x <= t, x < t, x >= t], default=x > t)


def route(
    trees: TreeArrays,
    x: NDArray[Any],
    weights: NDArray[np.float64] | None = None,
    chunk: int = 20_000,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Each row's raw score (trees' sum plus base) and each node's weighted count of rows."""
    x = np.asarray(x, dtype=np.float32).astype(np.float64)
    weights = np.ones(len(x)) if weights is None else np.asarray(weights, dtype=np.float64)
    raw = np.full(len(x), trees.base)
    counts = np.zeros(len(trees.mode))
    leaf = trees.is_leaf
    for start in range(0, len(x), chunk):
        rows, w = x[start : start + chunk], weights[start : start + chunk]
        for root in trees.roots.tolist():
            at = np.full(len(rows), root)
            counts[root] += w.sum()
            active = np.arange(len(rows)) if not leaf[root] else np.arange(0)
            while active.size:
                node = at[active]
                go = goes_true(
                    trees.mode[node], rows[active, trees.feature[node]], trees.threshold[node]
                )
                at[active] = nxt = np.where(go, trees.true_child[node], trees.false_child[node])
                counts += np.bincount(nxt, weights=w[active], minlength=len(counts))
                active = active[~leaf[nxt]]
            raw[start : start + chunk] += trees.value[at]
    return raw, counts


def with_hitrates(onnx_bytes: bytes, hitrates: NDArray[np.float64]) -> bytes:
    """The model with `nodes_hitrates` replaced (one value per node, in attribute order)."""
    model = onnx.load_from_string(onnx_bytes)
    node, _ = _tree_node(model.graph)
    for attribute in list(node.attribute):
        if attribute.name == "nodes_hitrates":
            node.attribute.remove(attribute)
    values = np.asarray(hitrates, dtype=np.float32).tolist()
    node.attribute.append(onnx.helper.make_attribute("nodes_hitrates", values))
    return bytes(model.SerializeToString())


def with_cover(
    onnx_bytes: bytes, x_fit: NDArray[Any], weights: NDArray[np.float64] | None = None
) -> bytes:
    """The model with `nodes_hitrates` set to each node's share of the (weighted) fit rows."""
    trees = read_tree_arrays(onnx_bytes)
    _, counts = route(trees, x_fit, weights)
    total = counts[trees.roots].sum() / len(trees.roots) if len(trees.roots) else 1.0
    return with_hitrates(onnx_bytes, counts / total)
