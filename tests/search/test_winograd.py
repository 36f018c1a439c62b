"""Winograd convolutions: found, tuned beside the direct ones, chosen by measurement.

The logic tests need no tuning; the last one tunes zoo:convnet for real (two 3x3
convolutions), then removes one algorithm's records with the store's own delete, and
checks that the compiled model follows what is left.
"""

from __future__ import annotations

import shutil

import pytest

from schedules_db import SliceKey, Store, slice_progress
from tunesvc.pipeline.compiler import compile_with_database
from tunesvc.pipeline.conv_algorithms import DIRECT, ConvPlan, ConvSite, choose_plan
from tunesvc.pipeline.importer import extract_task_set, to_relax
from tunesvc.pipeline.winograd import transform_matrices
from tunesvc.models.inputs import sample_inputs
from tunesvc.models.sources import load_model
from tunesvc.evaluation.reference import compare, reference_outputs
from tunesvc.runtime.tuned import load
from tunesvc.targets import TargetSpec
from tunesvc.runtime.vm import VmModel
from workers.shares import Share

from tests.conftest import tunesvc

SITE = ConvSite(0, "d", {"winograd2": "w2", "winograd4": "w4"})


def test_each_site_takes_its_fastest_measured_algorithm() -> None:
    latency = {"d": 3e-5, "w2": 2e-5, "w4": 1e-5}
    assert choose_plan([SITE], latency.get).algorithms == ("winograd4",)
    assert choose_plan([SITE], {"d": 1e-5, "w4": 2e-5}.get).algorithms == (DIRECT,)
    # a variant never measured is never chosen; nothing measured runs direct
    assert choose_plan([SITE], {"w2": 9.0}.get).algorithms == ("winograd2",)
    assert choose_plan([SITE], {}.get).algorithms == (DIRECT,)
    assert ConvPlan(("winograd4", DIRECT, "winograd4")).describe() == "direct x1, winograd4 x2"
    assert ConvPlan().all_direct and ConvPlan(()).describe() == "direct"


def _target() -> object:
    return TargetSpec("cpu").for_share(Share("cpu", 50))


def test_a_model_without_such_convolutions_gets_no_variants() -> None:
    task_set = extract_task_set(to_relax(load_model("zoo:mlp")), _target())
    assert task_set.sites == [] and not any(t.competes_with for t in task_set.tasks)


def test_each_3x3_convolution_gets_two_variants() -> None:
    task_set = extract_task_set(to_relax(load_model("zoo:convnet")), _target())
    assert len(task_set.sites) == 2
    by_shash = {t.shash: t for t in task_set.tasks}
    for site in task_set.sites:
        assert set(site.variants) == {"winograd2", "winograd4"}
        for shash in site.variants.values():
            assert by_shash[shash].competes_with == site.direct
            assert "winograd" in by_shash[shash].name


@pytest.mark.parametrize("tile", [2, 4])
def test_transform_matrices_hold_tvms_values(tile: int) -> None:
    """The compact constant matrices, computed by a compiled kernel, are TVM's
    Cook-Toom A, B and G entry for entry."""
    import numpy as np
    import tvm
    from tvm import te
    from tvm.topi.nn.winograd_util import _cook_toom_convolution, _interpolation_points

    expected = _cook_toom_convolution(_interpolation_points(tile + 1), tile, 3)
    for matrix, values in zip(transform_matrices(tile, "float32"), expected):
        kernel = tvm.compile(te.create_prim_func([matrix]), target="llvm")
        out = tvm.runtime.tensor(np.zeros(values.shape, "float32"))
        kernel(out)
        np.testing.assert_array_equal(out.numpy(), values.astype("float32"))


@pytest.mark.parametrize("algorithm", ["winograd2", "winograd4"])
def test_winograd_outputs_match_onnxruntime(algorithm: str, tmp_path) -> None:
    """Default schedules (no database): the algorithm alone, against onnxruntime."""
    import tvm.s_tir.meta_schedule as ms

    model = load_model("zoo:convnet", {"input": (1, 16, 20, 20)})
    executable = compile_with_database(to_relax(model), _target(), ms.database.MemoryDatabase(),
                                       ConvPlan(rest=algorithm))
    library = tmp_path / "model.so"
    executable.export_library(str(library))
    inputs = sample_inputs(model)
    outputs = VmModel(library, "cpu", 1)(*inputs)
    agreement = compare(outputs, reference_outputs(model, inputs))
    assert agreement.ok, (agreement.max_abs_error, agreement.tolerance)


@pytest.mark.slow
def test_both_variants_are_tuned_and_the_faster_one_is_compiled(tmp_path, tunesvc_env) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    done = tunesvc("tune", "zoo:convnet", "--shares", "50", "--trials-per-task", "8",
                   "--db", url, "--no-compare", env=tunesvc_env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "winograd2" in done.stdout and "winograd4" in done.stdout

    tuned = load("zoo:convnet", share=50, db=url)
    task_set = tuned.compiled
    by_shash = {s.lookup.workload_shash: s for s in tuned.sources}
    store = Store(url)
    key = tuned.at.key
    best = {t.shash: _as_compiled(store, key, t.shash) for t in task_set.tasks}
    assert all(best[t.shash] is not None for t in task_set.tasks)  # every variant stored
    for site in task_set.sites:
        fastest = min((DIRECT, *site.variants), key=lambda name: best[site.task(name)])
        chosen = [s for shash, s in by_shash.items() if shash in
                  {site.task(name) for name in (DIRECT, *site.variants)}]
        assert [s.algorithm for s in chosen] == [fastest]

    store.close()

    # Leave one algorithm measured per convolution (in a copy each): the model follows.
    for keep in ("winograd4", DIRECT):
        copy = tmp_path / f"only-{keep}.sqlite"
        shutil.copy(tmp_path / "db.sqlite", copy)
        with_one = Store(f"sqlite:///{copy}")
        for site in task_set.sites:
            for name in (DIRECT, *site.variants):
                if name != keep:
                    with_one.delete_records(key, site.task(name))
        with_one.close()
        followed = load("zoo:convnet", share=50, db=f"sqlite:///{copy}")
        convs = [s for s in followed.sources if "conv2d" in s.task_name]
        assert len(convs) == 2 and {s.algorithm for s in convs} == {keep}
        assert all(s.lookup.record is not None for s in convs)
        inputs = sample_inputs(followed.model)
        assert compare(followed(*inputs), reference_outputs(followed.model, inputs)).ok


def _as_compiled(store: Store, key: SliceKey, shash: str) -> float | None:
    """An operator's latency as the model would run it: its fastest stored record, or
    TVM's default schedule where that measured faster (the compiler never takes a
    record slower than the default)."""
    measured = [r.mean_run_sec for r in store.all_records(key, shash)
                if r.mean_run_sec is not None]
    if not measured:
        return None
    default = slice_progress(store, key, shash).default_run_sec
    return min(measured + ([default] if default is not None else []))


def test_direct_tasks_keep_the_workloads_stored_records_were_tuned_as() -> None:
    """The hook must not change a direct convolution's workload: stored databases of
    direct kernels keep matching."""
    import tvm
    from tvm import relax
    from tvm.s_tir import meta_schedule as ms

    from schedules_db.ms_adapter import workload_shash
    from tunesvc.pipeline.importer import channels_last

    mod, target = to_relax(load_model("zoo:convnet")), _target()
    with target, tvm.transform.PassContext(opt_level=3):
        plain = tvm.transform.Sequential([
            channels_last, relax.transform.LegalizeOps(), relax.transform.AnnotateTIROpPattern(),
            relax.transform.FoldConstant(), relax.transform.FuseOps(), relax.transform.FuseTIR(),
            relax.transform.AttachAttrLayoutFreeBuffers()])(mod)
    before = {workload_shash(t.dispatched[0])
              for t in ms.relax_integration.extract_tasks(plain, target)}
    direct = {t.shash for t in extract_task_set(mod, target).tasks if not t.competes_with}
    assert direct == before
