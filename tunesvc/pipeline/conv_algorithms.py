"""Which algorithm each convolution runs as: direct, or Winograd with 2x2 or 4x4 tiles.

A model's convolutions that Winograd can compute (`tunesvc.pipeline.winograd.winograd_shape`) are
numbered in the order Relax legalizes them. A `ConvPlan` gives each of them an algorithm;
`legalize_map` is the LegalizeOps hook that carries it out. A direct convolution is
legalized by TVM's own function, so direct kernels keep exactly the workloads they were
always tuned as (stored records stay valid).

The choice is made from measurements: every variant of a convolution is a tuning task of
its own (`ConvSite` says which tasks are alternatives for one call site), and
`choose_plan` takes, per site, the variant whose stored best kernel is fastest.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from tvm import relax
from tvm.relax.transform.legalize_ops.nn import _nn_conv2d

from tunesvc.pipeline.winograd import emit_winograd, winograd_shape

DIRECT = "direct"
# algorithm name -> output tile size
WINOGRAD = {"winograd2": 2, "winograd4": 4}
LegalizeFunc = Callable[[relax.BlockBuilder, relax.Call], relax.Expr]


@dataclass(frozen=True)
class ConvPlan:
    """The algorithm of each Winograd-able convolution, by legalization order; those past
    the end of `algorithms` run as `rest`."""

    algorithms: tuple[str, ...] = ()
    rest: str = DIRECT

    def algorithm(self, index: int) -> str:
        return self.algorithms[index] if index < len(self.algorithms) else self.rest

    @property
    def all_direct(self) -> bool:
        return self.rest == DIRECT and all(a == DIRECT for a in self.algorithms)

    def describe(self) -> str:
        """'direct' or e.g. 'direct x2, winograd4 x6' (for logs)."""
        if self.all_direct:
            return DIRECT
        counts: dict[str, int] = {}
        for name in self.algorithms:
            counts[name] = counts.get(name, 0) + 1
        parts = [f"{name} x{count}" for name, count in sorted(counts.items())]
        return ", ".join(parts + ([f"then {self.rest}"] if self.rest != DIRECT else []))


@dataclass
class PlanHook:
    """`plan` as a LegalizeOps hook; `seen` counts the Winograd-able convolutions met."""

    plan: ConvPlan
    seen: int = 0

    def legalize(self, bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
        shape = winograd_shape(call)
        if shape is None:
            return _nn_conv2d(bb, call)
        algorithm = self.plan.algorithm(self.seen)
        self.seen += 1
        if algorithm == DIRECT:
            return _nn_conv2d(bb, call)
        return emit_winograd(bb, call, shape, WINOGRAD[algorithm])

    def legalize_map(self) -> dict[str, LegalizeFunc]:
        return {"relax.nn.conv2d": self.legalize}


@dataclass(frozen=True)
class ConvSite:
    """One Winograd-able convolution: the task it is part of when direct, and the task
    that replaces it under each other algorithm (task structural hashes)."""

    index: int
    direct: str
    variants: Mapping[str, str] = field(default_factory=dict)

    def task(self, algorithm: str) -> str:
        return self.direct if algorithm == DIRECT else self.variants[algorithm]


def choose_plan(sites: list[ConvSite],
                latency_of: Callable[[str], float | None]) -> ConvPlan:
    """Per site, the algorithm whose task's best stored kernel is fastest (`latency_of` a
    task hash -> seconds, None when never measured). A variant never measured is never
    chosen; with nothing measured, a site runs direct."""
    chosen = []
    for site in sorted(sites, key=lambda s: s.index):
        measured = {name: latency_of(site.task(name)) for name in (DIRECT, *site.variants)}
        known = {name: sec for name, sec in measured.items() if sec is not None}
        chosen.append(min(known, key=lambda name: (known[name], name)) if known else DIRECT)
    return ConvPlan(tuple(chosen))
