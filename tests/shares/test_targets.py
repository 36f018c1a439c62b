"""CPU targets name the host's instruction set; other instruction sets are kept apart."""

from __future__ import annotations


import pytest
import tvm

from schedules_db.targetkey import target_json, target_key
from tunesvc.errors import UserError
from tunesvc.runtime.tuned import check_runs_here
from tunesvc.targets import ShareTarget, TargetSpec
from workers.cpu_isa import host_cpu_attrs, host_mismatch, implied_features
from workers.shares import Share, machine_cores


def other_isa_target() -> dict:
    """This host's CPU with its widest vector extension switched off: another ISA."""
    host = host_cpu_attrs()
    widest = "-avx512f" if "avx512f" in implied_features(host["mcpu"]) else "-avx2"
    return {"kind": "llvm", "mcpu": host["mcpu"], "mattr": [*host.get("mattr", []), widest]}


def test_cpu_target_names_this_host() -> None:
    attrs = TargetSpec("cpu").at(Share("cpu", 100)).attrs
    assert attrs["mcpu"] == tvm.get_global_func("target.llvm_get_system_cpu")()
    assert attrs["num-cores"] == machine_cores()
    assert host_mismatch(attrs) is None
    check_runs_here(TargetSpec("cpu").at(Share("cpu", 100)))


def test_explicit_targets_as_json_or_tag() -> None:
    spec = TargetSpec('{"kind": "llvm", "mcpu": "skylake-avx512"}')
    assert spec.share_kind == "cpu"
    attrs = spec.at(Share("cpu", 100)).attrs
    assert attrs["mcpu"] == "skylake-avx512" and attrs["num-cores"] == machine_cores()
    assert TargetSpec("nvidia/nvidia-h100").share_kind == "gpu"
    with pytest.raises(UserError, match="unknown target"):
        TargetSpec("bogus").validate()
    with pytest.raises(UserError, match="tunes llvm"):
        TargetSpec('{"kind": "c"}').validate()


def test_another_instruction_set_is_refused_here() -> None:
    other = other_isa_target()
    problem = host_mismatch(other)
    assert problem is not None and "this host is" in problem
    with pytest.raises(UserError, match="cannot run here"):
        check_runs_here(ShareTarget.of(tvm.target.Target(other), Share("cpu", 100)))


def test_key_tells_instruction_sets_apart_but_not_core_counts() -> None:
    host = TargetSpec("cpu")
    at_50 = target_key(target_json(host.for_share(Share("cpu", 50))))
    at_100 = target_key(target_json(host.for_share(Share("cpu", 100))))
    assert at_50 == at_100
    other = target_key(target_json(tvm.target.Target({**other_isa_target(), "num-cores": 1})))
    generic = target_key(target_json(tvm.target.Target({"kind": "llvm", "num-cores": 1})))
    assert len({at_100, other, generic}) == 3


def test_cluster_placement_follows_the_cpu_nodes_declare() -> None:
    from tunesvc.cluster.placement import PER_WORKER, isa_placement
    from workers.cpu_isa import isa_resource

    here = {"kind": "llvm", "mcpu": "znver3", "num-cores": 1}
    avx512 = {"kind": "llvm", "mcpu": "znver3", "mattr": ["+avx512f"]}
    resource = isa_resource(here)
    assert resource == "tunesvc-isa-znver3"
    assert isa_resource(avx512) != resource  # features tell CPUs apart too
    assert isa_placement(here, {"CPU": 2.0}) == {}  # no node declares: any node will do
    assert isa_placement(here, {"CPU": 2.0, resource: 1000.0}) == {resource: PER_WORKER}
    with pytest.raises(UserError, match="no node of this Ray cluster has the target's CPU"):
        isa_placement(avx512, {resource: 1000.0})
    generic = {"kind": "llvm"}
    assert isa_placement(generic, {resource: 1000.0}) == {}  # generic code runs anywhere
