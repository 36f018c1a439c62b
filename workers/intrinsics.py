"""Register only the tensor intrinsics a target can use, before MetaSchedule asks for all.

`TuneContext` imports `tvm.s_tir.tensor_intrin`, whose `__init__` parses the intrinsics
of every backend: about 33 s per process on a 2-core machine, most of it CUDA's (12 s)
and ROCm's. A CPU worker needs only the CPU ones (about 2 s). This registers the package
without running its `__init__`, then imports the submodules of the target's family; the
later `import tvm.s_tir.tensor_intrin` finds the package and does nothing.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

PACKAGE = "tvm.s_tir.tensor_intrin"
FAMILIES: dict[str, tuple[str, ...]] = {
    "llvm": ("x86", "arm_cpu", "riscv_cpu"),
    "cuda": ("cuda",),
}


def load_tensor_intrinsics(target_kind: str) -> None:
    """Make the intrinsics of `target_kind` available; idempotent; all of them for kinds
    this module does not know."""
    if target_kind not in FAMILIES:
        importlib.import_module(PACKAGE)
        return
    if PACKAGE not in sys.modules:
        spec = importlib.util.find_spec(PACKAGE)
        if spec is None or spec.loader is None:
            return
        sys.modules[PACKAGE] = importlib.util.module_from_spec(spec)
    for name in FAMILIES[target_kind]:
        importlib.import_module(f"{PACKAGE}.{name}")
