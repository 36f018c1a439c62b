"""ONNX graphs as exporters write them: each kind that TVM's import cannot take as it is
runs with `tunesvc run` and matches onnxruntime, or fails in one line naming the cause."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from tests import onnx_graphs
from tests.conftest import tunesvc
from tunesvc.errors import UserError
from tunesvc.models.sources import load_model
from tunesvc.models.onnx.prep import prepare_for_tvm

pytestmark = [pytest.mark.cpu, pytest.mark.slow]  # real models: minutes in all


def _run(path: Path, env: dict[str, str], tmp_path: Path, *args: str) -> dict:
    done = tunesvc("run", str(path), "--runs", "3", "--json", "--no-reference",
                   "--db", f"sqlite:///{tmp_path / 'db.sqlite'}", *args, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("make, shape", [
    (onnx_graphs.shape_subgraph, ["--input-shape", "x:3x4x6"]),
    (onnx_graphs.minus_one_dim, ["--input-shape", "x:2x3x5x7"]),
    (onnx_graphs.scalar_inputs, []),
    (lambda p: onnx_graphs.recurrent(p, "LSTM", "bidirectional"), []),
    (lambda p: onnx_graphs.recurrent(p, "GRU", "reverse"), []),
    (onnx_graphs.scatter_gather, []),
], ids=["shape-subgraph", "minus-one-dim", "scalar-inputs", "lstm", "gru", "scatter-gather"])
def test_exported_graph_runs_and_matches_onnxruntime(make, shape: list[str], tmp_path: Path,
                                                     tunesvc_env: dict[str, str]) -> None:
    report = _run(make(tmp_path / "model.onnx"), tunesvc_env, tmp_path, *shape)
    assert report["agreement_ok"] and report["max_abs_error"] <= report["tolerance"]


def test_dynamic_dims_hint_a_shape_that_is_then_accepted(tmp_path: Path) -> None:
    path = onnx_graphs.minus_one_dim(tmp_path / "m.onnx")
    with pytest.raises(UserError, match=r"dynamic dimensions \?x3x\?x\?.*--input-shape x:1x3x1x1$"):
        load_model(str(path))
    assert load_model(str(path), {"x": (1, 3, 1, 1)}).input_shapes == {"x": (1, 3, 1, 1)}
    with pytest.raises(UserError, match="only its dynamic"):
        load_model(str(path), {"x": (1, 4, 1, 1)})


def test_a_dynamic_batch_alone_runs_at_batch_one_and_says_so(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = onnx_graphs.dynamic_batch(tmp_path / "m.onnx")
    assert load_model(str(path)).input_shapes == {"x": (1, 3, 4)}
    assert "dynamic batch dimension (?x3x4): running at batch 1" in capsys.readouterr().err
    assert load_model(str(path), {"x": (5, 3, 4)}).input_shapes == {"x": (5, 3, 4)}


@pytest.mark.parametrize("sign", [1.0, -1.0], ids=["then", "else"])
def test_an_if_on_a_computed_value_takes_the_branch_its_condition_takes(
        sign: float, tmp_path: Path, tunesvc_env: dict[str, str]) -> None:
    inputs = tmp_path / "x.npz"
    np.savez(inputs, x=np.full([2, 3], sign * 0.5, np.float32))
    report = _run(onnx_graphs.data_if(tmp_path / "m.onnx"), tunesvc_env, tmp_path,
                  "--inputs", str(inputs))
    assert report["agreement_ok"] and report["max_abs_error"] == 0.0


def test_scalar_inputs_need_no_shape_and_keep_their_types(tmp_path: Path) -> None:
    model = load_model(str(onnx_graphs.scalar_inputs(tmp_path / "m.onnx")))
    assert model.input_shapes == {"x": (2, 3), "gain": (), "rate": ()}
    assert model.input_dtypes == {"x": "float32", "gain": "float32", "rate": "int64"}


def test_shape_computations_are_folded_before_import(tmp_path: Path) -> None:
    model = load_model(str(onnx_graphs.shape_subgraph(tmp_path / "m.onnx")), {"x": (3, 4, 6)})
    assert {n.op_type for n in model.for_tvm.prepared.graph.node} == {"Reshape", "MatMul"}
    assert {n.op_type for n in model.proto.graph.node} >= {"Shape", "Gather"}  # as given


def test_unsupported_operator_is_named_in_one_line(tmp_path: Path,
                                                   tunesvc_env: dict[str, str]) -> None:
    path = onnx_graphs.unsupported_op(tmp_path / "m.onnx")
    done = tunesvc("run", str(path), "--db", f"sqlite:///{tmp_path / 'db.sqlite'}",
                   env=tunesvc_env)
    assert done.returncode == 1
    assert done.stderr.strip() == (f"Error: TVM cannot import {path}: no converter for Det "
                                   f"(node 'det_1')")
    assert not (tmp_path / "db.sqlite").exists()


def test_inputs_file_feeds_the_run_and_bad_files_fail_in_one_line(
        tmp_path: Path, tunesvc_env: dict[str, str]) -> None:
    path = onnx_graphs.scalar_inputs(tmp_path / "m.onnx")
    good, bad = tmp_path / "good.npz", tmp_path / "bad.npz"
    np.savez(good, x=np.ones((2, 3), np.float32), gain=np.float32(2.0), rate=np.int64(16000))
    np.savez(bad, x=np.ones((2, 3), np.float32))
    times = tmp_path / "times.json"
    assert _run(path, tunesvc_env, tmp_path, "--inputs", str(good), "--export-times",
                str(times))["agreement_ok"]
    exported = json.loads(times.read_text())["seconds"]
    assert list(exported) == ["tuned"] and len(exported["tuned"]) == 3  # --runs 3
    assert all(sec > 0 for sec in exported["tuned"])
    done = tunesvc("run", str(path), "--inputs", str(bad), "--db",
                   f"sqlite:///{tmp_path / 'db.sqlite'}", env=tunesvc_env)
    assert done.returncode == 1
    assert done.stderr.strip() == (f"Error: --inputs {bad} has no array for input(s) gain, "
                                   f"rate (it has: x)")


# Unrolled recurrent layers against onnxruntime (layout 0) and ONNX's reference
# implementation (layout 1, which onnxruntime lacks), every direction and option.
_rng = np.random.default_rng(0)


def _recurrent(op: str, direction: str, layout: int, peepholes: bool = False,
               states: bool = True, **attrs: object) -> tuple[onnx.ModelProto, dict]:
    gates, dirs, seq, batch, size, hidden = {"LSTM": 4, "GRU": 3, "RNN": 1}[op], \
        2 if direction == "bidirectional" else 1, 5, 2, 3, 4
    weights = [numpy_helper.from_array(_rng.standard_normal(s).astype(np.float32), n)
               for n, s in (("W", (dirs, gates * hidden, size)),
                            ("R", (dirs, gates * hidden, hidden)), ("B", (dirs, 2 * gates * hidden)))]
    state_shape = [batch, dirs, hidden] if layout else [dirs, batch, hidden]
    state_names = (["h0", "c0"] if op == "LSTM" else ["h0"]) if states else []
    inputs = {"x": [batch, seq, size] if layout else [seq, batch, size],
              **{name: state_shape for name in state_names}}
    names = ["x", "W", "R", "B", ""] + (state_names or (["", ""] if peepholes else []))
    if peepholes:
        weights.append(numpy_helper.from_array(
            _rng.standard_normal((dirs, 3 * hidden)).astype(np.float32), "P"))
        names.append("P")
    outputs = ["Y", "Y_h"] + (["Y_c"] if op == "LSTM" else [])
    node = helper.make_node(op, names, outputs, hidden_size=hidden, direction=direction,
                            layout=layout, **attrs)
    graph = helper.make_graph(
        [node], "rnn", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s)
                        for n, s in inputs.items()],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs], weights)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)]), inputs


@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
@pytest.mark.parametrize("layout", [0, 1])
def test_unrolled_recurrent_layer_matches(op: str, direction: str, layout: int) -> None:
    _check_unrolled(*_recurrent(op, direction, layout))


@pytest.mark.parametrize("options", [
    {"op": "LSTM", "peepholes": True}, {"op": "LSTM", "peepholes": True, "states": False},
    {"op": "LSTM", "clip": 0.5}, {"op": "GRU", "linear_before_reset": 1},
    {"op": "GRU", "clip": 0.5}, {"op": "RNN", "activations": ["Relu", "Relu"]},
    {"op": "LSTM", "activations": ["Sigmoid", "Relu", "Tanh"] * 2},
], ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
def test_unrolled_recurrent_options_match(options: dict) -> None:
    options = dict(options)
    _check_unrolled(*_recurrent(options.pop("op"), "bidirectional", 0, **options))


def _check_unrolled(model: onnx.ModelProto, shapes: dict[str, list[int]]) -> None:
    feed = {name: _rng.standard_normal(shape).astype(np.float32) for name, shape in shapes.items()}
    layout = next(a.i for a in model.graph.node[0].attribute if a.name == "layout")
    want = (ReferenceEvaluator(model).run(None, feed) if layout else
            onnxruntime.InferenceSession(model.SerializeToString()).run(None, feed))
    unrolled = prepare_for_tvm(model, {k: tuple(v) for k, v in shapes.items()}, "test")
    assert not {"LSTM", "GRU", "RNN"} & {n.op_type for n in unrolled.graph.node}
    got = onnxruntime.InferenceSession(unrolled.SerializeToString()).run(None, feed)
    for expected, actual in zip(want, got, strict=True):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)


def test_runtime_sequence_lengths_are_refused(tmp_path: Path) -> None:
    model, shapes = _recurrent("LSTM", "forward", 0)
    model.graph.node[0].input[4] = "lens"
    model.graph.input.append(helper.make_tensor_value_info("lens", TensorProto.INT32, [2]))
    path = tmp_path / "m.onnx"
    onnx.save(onnx.shape_inference.infer_shapes(model), str(path))
    with pytest.raises(UserError, match="takes sequence lengths at run time"):
        load_model(str(path))


@pytest.mark.parametrize("rate", ["16000", "8000"])
def test_a_fixed_scalar_input_decides_the_branches_on_it(rate: str, tmp_path: Path,
                                                          tunesvc_env: dict[str, str]) -> None:
    path = onnx_graphs.branch_on_scalar(tmp_path / "m.onnx")
    model = load_model(str(path), {"x": (2, 4)}, {"rate": rate})
    assert "If" not in {n.op_type for n in model.for_tvm.prepared.graph.node}
    assert model.input_shapes == {"x": (2, 4)} and model.input_values["rate"] == int(rate)
    report = _run(path, tunesvc_env, tmp_path, "--input-shape", "x:2x4", "--input-value",
                  f"rate={rate}")
    assert report["agreement_ok"] and report["max_abs_error"] <= report["tolerance"]


def test_a_branch_on_an_unfixed_input_is_named_with_the_way_out(tmp_path: Path) -> None:
    path = onnx_graphs.branch_on_scalar(tmp_path / "m.onnx")
    with pytest.raises(UserError, match=r"no converter for If .*--input-value NAME=VALUE"):
        load_model(str(path), {"x": (2, 4)})


@pytest.mark.parametrize("value, message", [
    ("nope=1", "has no input named"),
    ("rate=fast", "not a value of type int64"),
    ("x=1", "scalar inputs only"),
])
def test_bad_input_values_fail_in_one_line(value: str, message: str, tmp_path: Path) -> None:
    path = onnx_graphs.branch_on_scalar(tmp_path / "m.onnx")
    name, fixed = value.split("=")
    with pytest.raises(UserError, match=message):
        load_model(str(path), {"x": (2, 4)}, {name: fixed})
