"""Failures while preparing, compiling, caching or loading a model end in one line that
names the model and the step, never in a traceback; what can be recovered is."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from tests.conftest import tunesvc
from tunesvc.runtime import load_library
from tunesvc.errors import ModelStepError, UserError
from tunesvc.models.sources import load_model
from tunesvc.evaluation.reference import reference_outputs
from tunesvc.runtime.tuned import load


def _stale_value_info_model(path: Path) -> Path:
    """Relu then Neg, with value_info calling the Relu's float output INT64: what an
    exporter leaves behind, and what onnx's shape inference refuses."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 8])
    stale = helper.make_tensor_value_info("r", TensorProto.INT64, [2, 8])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["r"]),
                               helper.make_node("Neg", ["r"], ["y"])], "g", [x], [y],
                              value_info=[stale])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(Exception):
        onnx.shape_inference.infer_shapes(model, strict_mode=True)
    onnx.save(model, path)
    return path


def test_graph_whose_shape_inference_fails_still_loads(tmp_path: Path) -> None:
    loaded = load_model(str(_stale_value_info_model(tmp_path / "stale.onnx")))
    assert loaded.input_shapes == {"x": (2, 8)}


def test_run_on_it_ends_in_at_most_one_line(tmp_path: Path, tunesvc_env: dict) -> None:
    model = _stale_value_info_model(tmp_path / "stale.onnx")
    done = tunesvc("run", str(model), "--share", "100", "--runs", "10",
                   "--db", f"sqlite:///{tmp_path / 'db.sqlite'}", env=tunesvc_env, timeout=600)
    assert "Traceback" not in done.stderr + done.stdout
    if done.returncode != 0:
        assert done.returncode == 1 and done.stderr.strip().count("\n") == 0, done.stderr
        assert done.stderr.startswith("Error: ")


def test_damaged_cached_library_is_compiled_again(tmp_path: Path, monkeypatch,  # type: ignore[no-untyped-def]
                                                  tunesvc_env: dict) -> None:
    home, db = tmp_path / "home", f"sqlite:///{tmp_path / 'db.sqlite'}"
    env = {**tunesvc_env, "TUNESVC_HOME": str(home)}
    done = tunesvc("run", "zoo:mlp", "--share", "100", "--runs", "1", "--no-reference",
                   "--db", db, env=env, timeout=600)  # compiles it into the cache
    assert done.returncode == 0, done.stderr
    [cached] = (home / "compiled").glob("*.so")
    cached.write_bytes(b"not a library")  # what a full disk or a killed copy leaves
    monkeypatch.setenv("TUNESVC_HOME", str(home))
    again = load("zoo:mlp", share=100, db=db)
    assert not again.cache_hit and again.library_path == cached
    x = np.ones((8, 64), dtype="float32")
    np.testing.assert_allclose(again(x)[0], reference_outputs(again.model, [x])[0], rtol=1e-4,
                               atol=1e-4)


def test_library_that_cannot_be_loaded_is_one_line(tmp_path: Path, tunesvc_env: dict) -> None:
    library = tmp_path / "mlp.so"
    done = tunesvc("compile", "zoo:mlp", "--share", "100", "-o", str(library),
                   "--db", f"sqlite:///{tmp_path / 'db.sqlite'}", env=tunesvc_env, timeout=600)
    assert done.returncode == 0, done.stderr
    whole = library.read_bytes()
    library.write_bytes(whole[:4096])  # cut short, as a failed copy leaves it
    with pytest.raises(UserError, match=r"mlp.so is damaged") as err:
        load_library(library)
    assert "\n" not in str(err.value)
    library.write_bytes(b"\x7fELF but not a library")
    manifest = library.with_name(library.name + ".json")
    data = json.loads(manifest.read_text())
    data["library_sha256"] = ""  # a manifest from before checksums: loading it is tried
    manifest.write_text(json.dumps(data))
    with pytest.raises(ModelStepError, match=r"mlp.so: loading the compiled library failed"):
        load_library(library)
