"""The instruction set a CPU target is for, and whether this host has it.

LLVM emits generic x86-64 code (no AVX) for a target that names no CPU, so `--target cpu`
names the host as LLVM sees it: its CPU name (`mcpu`), plus `mattr` for the vector
features where the host differs from what that name implies (a VM that hides AVX-512 from
a CPU whose name has it). Records tuned for one instruction set are keyed apart from every
other (see `schedules_db.targetkey`), and a worker never measures for a CPU it is not.
This module never changes the process it runs in.
"""

from __future__ import annotations

import hashlib
from typing import Any

import tvm
from tvm.target import Target

# Features that change the code LLVM emits for tensor kernels: vector width, FMA, dot
# products, matrix tiles. Other feature differences do not matter for a schedule's speed.
VECTOR_FEATURES = (
    "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl",
    "avx512vnni", "avx512bf16", "avx512fp16", "avxvnni", "amx-tile", "amx-int8", "amx-bf16",
    "neon", "sve", "sve2", "dotprod", "i8mm",
)


def host_cpu_attrs() -> dict[str, Any]:
    """`mcpu` (and `mattr` if needed) that describe this host's instruction set exactly."""
    name = str(tvm.get_global_func("tvm.codegen.llvm.GetHostCPUName")())
    if not name or name == "generic":
        return {}
    host = {str(k) for k, v in dict(tvm.get_global_func("tvm.codegen.llvm.GetHostCPUFeatures")()).items() if v}
    implied = implied_features(name)
    mattr = [f"+{f}" for f in VECTOR_FEATURES if f in host and f not in implied]
    mattr += [f"-{f}" for f in VECTOR_FEATURES if f in implied and f not in host]
    return {"mcpu": name, "mattr": mattr} if mattr else {"mcpu": name}


def implied_features(mcpu: str, mattr: tuple[str, ...] = ()) -> set[str]:
    """The features LLVM enables for a CPU name (and explicit `+f`/`-f` attributes)."""
    attrs: dict[str, Any] = {"kind": "llvm", "mcpu": mcpu}
    if mattr:
        attrs["mattr"] = list(mattr)
    features = tvm.get_global_func("target.llvm_get_cpu_features")(Target(attrs))
    return {str(name) for name in dict(features)}


def isa_of(target_attrs: dict[str, Any]) -> str:
    """A short description of a CPU target's instruction set: 'znver3 (avx2, fma)'."""
    mcpu = target_attrs.get("mcpu")
    if target_attrs.get("kind") != "llvm":
        return str(target_attrs.get("kind"))
    if not mcpu:
        return "generic CPU (no CPU named: baseline x86-64 or the triple's default)"
    features = implied_features(str(mcpu), tuple(target_attrs.get("mattr", ())))
    vector = [f for f in VECTOR_FEATURES if f in features]
    return f"{mcpu} ({', '.join(vector) or 'no vector extensions'})"


def host_mismatch(target_attrs: dict[str, Any]) -> str | None:
    """None if code for this CPU target runs here as tuned, else why not.

    A target that names no CPU (generic code) runs anywhere; one that names a CPU must
    name this host's instruction set: a schedule measured on other hardware says nothing.
    """
    if target_attrs.get("kind") != "llvm" or not target_attrs.get("mcpu"):
        return None
    host = host_cpu_attrs()
    wanted = {"mcpu": target_attrs["mcpu"], "mattr": sorted(target_attrs.get("mattr", ()))}
    have = {"mcpu": host.get("mcpu"), "mattr": sorted(host.get("mattr", ()))}
    if wanted == have:
        return None
    return f"the target is for {isa_of(target_attrs)}, this host is {isa_of({'kind': 'llvm', **host})}"


ISA_RESOURCE_PREFIX = "tunesvc-isa-"


def isa_resource(target_attrs: dict[str, Any]) -> str | None:
    """The Ray custom resource a cluster node declares to take jobs for this CPU target:
    'tunesvc-isa-znver3' (plus a digest of `mattr` where it is set). None for a target
    that names no CPU (generic code runs anywhere) or is not a CPU target."""
    if target_attrs.get("kind") != "llvm" or not target_attrs.get("mcpu"):
        return None
    mattr = ",".join(sorted(target_attrs.get("mattr", ())))
    digest = f"-{hashlib.sha1(mattr.encode()).hexdigest()[:8]}" if mattr else ""
    return f"{ISA_RESOURCE_PREFIX}{target_attrs['mcpu']}{digest}"
