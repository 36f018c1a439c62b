"""A slice's best schedule must compute what TVM's default schedule computes.

MetaSchedule measures candidates on random data and never looks at what they compute, so a
schedule that computes the wrong thing fast can win. Seen with TVM 0.27 (zoo:convnet at 50%,
8 trials a task: 1 record in 416 over 8 tunings): RewriteLayout gave a Winograd kernel's
transformed weight U[eps, nu, ci, co] the index map (eps*2 + nu//2, co//2, ci, nu%2, co%2)
where eps*3 + nu//2 was meant; two weight values shared one place and the kernel was off by
up to 2,200. Where such a kernel measured fastest (once, in CI), the model was off by 212.

After each job `verify_best` runs the slice's records, fastest first, on random inputs beside
the default schedule, marks each that disagrees as failed, and stops at the first that
agrees: the slice's best record is then one whose outputs were checked.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import numpy as np
import tvm
from tvm.ir import IRModule
from tvm.s_tir import Schedule, Trace
from tvm.s_tir.meta_schedule.arg_info import ArgInfo
from tvm.target import Target

from schedules_db.records import SliceKey, StoredRecord
from schedules_db.store import Store
from workers.agreement import max_abs_difference, tolerance
from workers.measure import default_schedule, device_name

log = logging.getLogger(__name__)

MAX_CHECKS = 32  # a reference that disagrees with everything must not fail a whole slice
SEED = 20261206


@dataclass(frozen=True)
class Disagreement:
    """A record whose outputs differ from the default schedule's."""

    record_id: int
    max_abs_error: float
    tolerance: float


@dataclass(frozen=True)
class Reference:
    """Random inputs of a kernel and what its default schedule computes from them."""

    inputs: list[np.ndarray]
    outputs: list[np.ndarray]

    @classmethod
    def of(cls, mod: IRModule, target: Target) -> Reference:
        rng = np.random.default_rng(SEED)
        inputs = [_random(rng, info.as_json()) for info in
                  ArgInfo.from_entry_func(mod, remove_preproc=False)]
        return cls(inputs, run(default_schedule(mod, target), target, inputs))

    def differs(self, outputs: list[np.ndarray]) -> tuple[float, float] | None:
        """(max abs error, tolerance) where `outputs` disagree, else None."""
        error, allowed = max_abs_difference(outputs, self.outputs), tolerance(self.outputs)
        return (error, allowed) if not error <= allowed else None


def _random(rng: np.random.Generator, info: list) -> np.ndarray:
    """Normal values for a float tensor; zeros for any other (indices stay in bounds)."""
    _, dtype, shape = info
    if str(dtype).startswith(("float", "bfloat")):
        return rng.standard_normal(shape).astype(dtype)
    return np.zeros(shape, dtype=dtype)


def run(mod: IRModule, target: Target, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Every argument of `mod`'s kernel after one run on copies of `inputs`."""
    device = tvm.device(device_name(target))
    args = [tvm.runtime.tensor(array, device) for array in inputs]
    tvm.compile(mod, target=target)(*args)
    device.sync()
    return [arg.numpy() for arg in args]


def scheduled(mod: IRModule, record: StoredRecord) -> IRModule:
    """`mod` with the record's trace applied (its weight layout rewrite left in the kernel)."""
    schedule = Schedule(mod)
    Trace.apply_json_to_schedule(json.loads(record.trace_json), schedule)
    return schedule.mod


def verify_best(store: Store, key: SliceKey, shash: str, mod: IRModule,
                target: Target) -> list[Disagreement]:
    """Check the slice's records fastest first until one agrees with the default schedule;
    each that disagrees is marked failed in `store`. Returns those. A kernel that cannot be
    built or run here outside MetaSchedule's builder is left unchecked (logged), never
    marked: the check must not fail a job or a record on its own account."""
    records = store.top_records(key, shash, limit=MAX_CHECKS)
    if not records:  # nothing to check: no default schedule to build and run either
        return []
    try:
        reference = Reference.of(mod, target)
    except Exception as exc:  # noqa: BLE001 - TVM raises many types; the job goes on
        log.warning("outputs not checked: the default schedule does not run here: %s", exc)
        return []
    wrong: list[Disagreement] = []
    for record in records:
        try:
            differs = reference.differs(run(scheduled(mod, record), target, reference.inputs))
        except Exception as exc:  # noqa: BLE001
            log.warning("record %d not checked: it does not run here: %s", record.id, exc)
            break
        if differs is None:
            break
        store.mark_failed(record.id)
        wrong.append(Disagreement(record.id, *differs))
        log.warning("record %d computes wrong outputs (max abs error %.3g, tolerance %.3g): "
                    "marked failed", record.id, *differs)
    return wrong
