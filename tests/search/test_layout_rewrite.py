"""Weights read in a layout the schedule chose: a tuned kernel still computes what TVM's
default schedule computes.

A transposed convolution swaps and flips its weight's axes before the product; MetaSchedule's
layout rewrite took that step for a copy and gave the weight a layout that drops its input
channels (PP-OCRv4 det's last layer came out 1.0 away from onnxruntime). The test tunes such
a layer for real and replays every stored schedule on its workload.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tvm
from tvm.s_tir import Schedule, Trace
from tvm.s_tir.meta_schedule.arg_info import ArgInfo

from schedules_db import Store
from tests import onnx_graphs
from tests.conftest import tunesvc
from tunesvc.evaluation.reference import compare, reference_outputs
from tunesvc.models.inputs import made_up, sample_inputs
from tunesvc.models.sources import load_model
from tunesvc.pipeline.importer import extract_tasks, to_relax
from tunesvc.runtime.tuned import load
from tunesvc.targets import TargetSpec
from workers.jobs import TaskSpec
from workers.shares import Share

FAILED = 1e9  # MetaSchedule records a candidate that failed with 1e10 s


def _tasks(model: str) -> list[TaskSpec]:
    """`model`'s tuning tasks for this CPU at 50%."""
    return extract_tasks(to_relax(load_model(model)), TargetSpec("cpu").for_share(
        Share("cpu", 50)))


def _runs(mod: tvm.IRModule, arrays: list[np.ndarray]) -> np.ndarray:
    """The output (the last argument) of `mod`'s kernel on `arrays`, compiled for this CPU."""
    kernel = tvm.compile(mod, target=TargetSpec("cpu").for_share(Share("cpu", 50)))
    args = [tvm.runtime.tensor(a) for a in arrays[:-1]] + \
        [tvm.runtime.tensor(np.zeros_like(arrays[-1]))]
    kernel["main"](*args)
    return args[-1].numpy()


def _random_args(mod: tvm.IRModule) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [made_up(rng, tuple(int(d) for d in info.as_json()[2]), np.dtype(info.as_json()[1]))
            for info in ArgInfo.from_prim_func(mod["main"])]


def test_a_direct_convolutions_weight_stays_free_to_take_a_blocked_layout() -> None:
    """Only the weights the rewrite would get wrong lose it: a 3x3 convolution keeps it."""
    conv = [t for t in _tasks("zoo:convnet") if t.name.startswith("fused_conv2d")]
    assert conv and all(1 in [int(i) for i in t.mod["main"].attrs["layout_free_buffers"]]
                        for t in conv)


@pytest.mark.slow
def test_every_tuned_transposed_convolution_computes_what_the_default_schedule_does(
        tmp_path: Path, tunesvc_env: dict[str, str]) -> None:
    path = onnx_graphs.transposed_conv(tmp_path / "upsample.onnx")
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    done = tunesvc("tune", str(path), "--shares", "50", "--trials-per-task", "16", "--db", url,
                   "--no-compare", env=tunesvc_env)
    assert done.returncode == 0, done.stdout + done.stderr

    task = next(t for t in _tasks(str(path)) if "conv2d_transpose" in t.name)
    key = TargetSpec("cpu").at(Share("cpu", 50)).key
    with Store(url) as store:
        rows = [r for r in store.all_records(key, task.shash) if r.mean_run_sec < FAILED]
    assert len(rows) >= 8
    arrays = _random_args(task.mod)
    expected = _runs(task.mod, arrays)
    for row in rows:
        schedule = Schedule(task.mod)
        Trace.apply_json_to_schedule(json.loads(row.trace_json), schedule)
        np.testing.assert_allclose(_runs(schedule.mod, arrays), expected, rtol=1e-4,
                                   atol=1e-4, err_msg=f"record {row.id}")

    tuned = load(str(path), share=50, db=url)
    inputs = sample_inputs(tuned.model)
    assert compare(tuned(*inputs), reference_outputs(tuned.model, inputs)).ok
