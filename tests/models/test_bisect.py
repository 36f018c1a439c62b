"""`run --bisect` names the first node whose output TVM computes differently; operators TVM
computes otherwise than onnxruntime are rewritten before import, so such models match."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from tunesvc.evaluation.bisect import describe, first_divergence
from tunesvc.models.sources import load_model
from tunesvc.evaluation.reference import compare, reference_outputs
from tunesvc.runtime.tuned import load

SHAPE = [1, 2, 4, 8]


def _normalized_features(path: Path) -> Path:
    """Log-energy-like features far from 0 (x * 2e-2 + 100), then per-channel mean-variance
    normalization: the spread is tiny against the mean, where TVM's own variance cancels."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, SHAPE)
    scale = helper.make_tensor("scale", TensorProto.FLOAT, [], [2e-2])
    offset = helper.make_tensor("offset", TensorProto.FLOAT, [], [100.0])
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("Mul", ["r", "scale"], ["m"], name="scale_down"),
             helper.make_node("Add", ["m", "offset"], ["f"], name="offset_up"),
             helper.make_node("MeanVarianceNormalization", ["f"], ["n"], name="normalize"),
             helper.make_node("Neg", ["n"], ["y"], name="negate")]
    graph = helper.make_graph(nodes, "features", [x], [y], initializer=[scale, offset])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def _inputs() -> list[np.ndarray]:
    return [np.abs(np.random.default_rng(0).standard_normal(SHAPE)).astype("float32")]


def test_bisect_names_the_node_tvm_gets_wrong(tmp_path: Path) -> None:
    loaded = load_model(str(_normalized_features(tmp_path / "f.onnx")))
    as_given = replace(loaded, for_tvm=replace(loaded.for_tvm, prepared=loaded.proto))  # as given
    diff = first_divergence(as_given, _inputs())
    assert diff is not None and diff.node == "normalize" and diff.op_type == "MeanVarianceNormalization"
    assert diff.cause == "TVM"
    assert "inf" in diff.tvm or "nan" in diff.tvm or diff.max_abs_error > 1


def test_the_rewritten_graph_matches_onnxruntime(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TUNESVC_HOME", str(tmp_path / "home"))
    loaded = load_model(str(_normalized_features(tmp_path / "f.onnx")))
    assert first_divergence(loaded, _inputs()) is None
    tuned = load(loaded, share=100, db=f"sqlite:///{tmp_path / 'db.sqlite'}")
    assert compare(tuned(*_inputs()), reference_outputs(loaded, _inputs())).ok


def test_is_inf_attributes_are_kept(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TUNESVC_HOME", str(tmp_path / "home"))
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])
    nodes = [helper.make_node("IsInf", ["x"], ["b"], detect_positive=0),
             helper.make_node("Cast", ["b"], ["y"], to=TensorProto.FLOAT)]
    path = tmp_path / "isinf.onnx"
    onnx.save(helper.make_model(helper.make_graph(nodes, "g", [x], [y]),
                                opset_imports=[helper.make_opsetid("", 17)]), path)
    loaded = load_model(str(path))
    value = [np.array([np.inf, -np.inf, 1.0, 0.0], dtype="float32")]
    tuned = load(loaded, share=100, db=f"sqlite:///{tmp_path / 'db.sqlite'}")
    np.testing.assert_array_equal(tuned(*value)[0], [0.0, 1.0, 0.0, 0.0])


def test_bisect_tells_a_change_made_by_the_preparation(tmp_path: Path) -> None:
    """A prepared graph that computes one node otherwise than the graph as given: bisect
    names that node and says the preparation changed it, not TVM."""
    loaded = load_model(str(_normalized_features(tmp_path / "f.onnx")))
    prepared = onnx.ModelProto()
    prepared.CopyFrom(loaded.for_tvm.prepared)
    negate = next(node for node in prepared.graph.node if node.name == "negate")
    negate.op_type = "Identity"  # y = n where the model says y = -n
    altered = replace(loaded, for_tvm=replace(loaded.for_tvm, prepared=prepared))
    diff = first_divergence(altered, _inputs())
    assert diff is not None and diff.node == "negate" and diff.value == "y"
    assert diff.cause == "preparation"
    assert (diff.op_type, diff.prepared_op_type) == ("Neg", "Identity")
    assert "(Neg, prepared for TVM as Identity)" in describe(diff)


def _log_of_clipped(path: Path) -> Path:
    """log(clip(x, 1e-10, inf)), as spectrogram front ends write it before a log-mel."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, SHAPE)
    low = helper.make_tensor("low", TensorProto.FLOAT, [], [1e-10])
    high = helper.make_tensor("high", TensorProto.FLOAT, [], [np.inf])
    nodes = [helper.make_node("Clip", ["x", "low", "high"], ["c"], name="floor"),
             helper.make_node("Log", ["c"], ["y"], name="log")]
    graph = helper.make_graph(nodes, "logclip", [x], [y], initializer=[low, high])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_a_clip_with_an_infinite_bound_matches_onnxruntime(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TUNESVC_HOME", str(tmp_path / "home"))
    loaded = load_model(str(_log_of_clipped(tmp_path / "logclip.onnx")))
    inputs = [np.random.default_rng(1).standard_normal(SHAPE).astype("float32")]
    assert first_divergence(loaded, inputs) is None
    tuned = load(loaded, share=100, db=f"sqlite:///{tmp_path / 'db.sqlite'}")
    got, expected = tuned(*inputs), reference_outputs(loaded, inputs)
    assert np.all(np.isfinite(got[0]))
    assert compare(got, expected).ok
