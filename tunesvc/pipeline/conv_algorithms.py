"""Which algorithm each convolution runs as: direct, or Winograd with 2x2 or 4x4 tiles;
and whether a 1x1 convolution and the depthwise one reading it run as one fused kernel.

A model's convolutions that Winograd can compute (`tunesvc.pipeline.winograd.winograd_shape`) are
numbered in the order Relax legalizes them, its fusable pairs (`tunesvc.pipeline.fused_pairs`)
in the order of their bindings. A `ConvPlan` gives each of them an algorithm;
`PlanHook` carries it out (a pass that finds the pairs, then a LegalizeOps hook). A direct
convolution is legalized by TVM's own function, so direct kernels keep exactly the
workloads they were always tuned as (stored records stay valid).

The choice is made from measurements: every variant is a tuning task of its own
(`ConvSite` says which tasks are alternatives for one call site), and `choose_plan` takes,
per site, the variant whose stored best kernels are fastest; a fused pair against the sum
of the two direct kernels it replaces.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import tvm
from tvm import relax
from tvm.ir import IRModule
from tvm.relax.transform.legalize_ops.nn import _nn_conv2d

from tunesvc.pipeline.fused_pairs import Pair, emit_pair, find_pairs
from tunesvc.pipeline.winograd import emit_winograd, winograd_shape

DIRECT = "direct"
# algorithm name -> output tile size
WINOGRAD = {"winograd2": 2, "winograd4": 4}
FUSED = "fused"
# Pairs offered as fused: measured per layer (docs/benchmarks.md), one kernel paid at
# stride 2 and lost at stride 1, where each tile recomputes a halo of the 1x1 convolution.
FUSED_STRIDES = (2,)
LegalizeFunc = Callable[[relax.BlockBuilder, relax.Call], relax.Expr]


@dataclass(frozen=True)
class ConvPlan:
    """The algorithm of each Winograd-able convolution, by legalization order; those past
    the end of `algorithms` run as `rest`."""

    algorithms: tuple[str, ...] = ()
    rest: str = DIRECT
    # the same for the fusable pairs, by binding order: DIRECT (two kernels) or FUSED
    pairs: tuple[str, ...] = ()
    pairs_rest: str = DIRECT

    def algorithm(self, index: int) -> str:
        return self.algorithms[index] if index < len(self.algorithms) else self.rest

    def pair_algorithm(self, index: int) -> str:
        return self.pairs[index] if index < len(self.pairs) else self.pairs_rest

    @property
    def all_direct(self) -> bool:
        return all(a == DIRECT for a in (self.rest, self.pairs_rest, *self.algorithms,
                                         *self.pairs))

    def describe(self) -> str:
        """'direct' or e.g. 'direct x2, winograd4 x6, fused pairs x3' (for logs)."""
        if self.all_direct:
            return DIRECT
        counts: dict[str, int] = {}
        for name in self.algorithms:
            counts[name] = counts.get(name, 0) + 1
        parts = [f"{name} x{count}" for name, count in sorted(counts.items())]
        parts += [f"then {self.rest}"] if self.rest != DIRECT else []
        fused = self.pairs.count(FUSED)
        parts += [f"fused pairs x{fused}"] if fused else []
        parts += ["then fused pairs"] if self.pairs_rest == FUSED else []
        return ", ".join(parts)


@dataclass
class PlanHook:
    """`plan` carried out: `find` (a pass, before LegalizeOps) notes the fusable pairs,
    `legalize_map` is the LegalizeOps hook. `seen` counts the Winograd-able convolutions
    met, `fused` the pairs emitted as one kernel."""

    plan: ConvPlan
    seen: int = 0
    pairs: list[Pair] = field(default_factory=list)
    fused: int = 0

    def find(self) -> tvm.transform.Pass:
        @tvm.transform.module_pass(opt_level=0, name="FindFusablePairs")
        def note(mod: IRModule, _ctx: tvm.transform.PassContext) -> IRModule:
            self.pairs = [pair for func in mod.functions.values()
                          if isinstance(func, relax.Function) for pair in find_pairs(func)
                          if pair.shape.stride in FUSED_STRIDES]
            return mod

        return note

    def _pair_of(self, call: relax.Call) -> int | None:
        """The index of the pair whose depthwise convolution `call` is, if any."""
        for index, pair in enumerate(self.pairs):
            if call.args[0].same_as(pair.depthwise.args[0]) \
                    and call.args[1].same_as(pair.depthwise.args[1]):
                return index
        return None

    def legalize(self, bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
        index = self._pair_of(call)
        if index is not None and self.plan.pair_algorithm(index) == FUSED:
            self.fused += 1
            return emit_pair(bb, self.pairs[index])
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
    """One Winograd-able convolution, or one fusable pair: the task it is part of when
    direct, and the task that replaces it under each other algorithm (task structural
    hashes). A pair's `direct` is its depthwise convolution's task and `also` its 1x1
    convolution's, which the direct form runs too and the fused kernel computes itself."""

    index: int
    direct: str
    variants: Mapping[str, str] = field(default_factory=dict)
    also: str = ""

    def task(self, algorithm: str) -> str:
        return self.direct if algorithm == DIRECT else self.variants[algorithm]

    def tasks(self, algorithm: str) -> tuple[str, ...]:
        """Every task the site runs under `algorithm`."""
        if algorithm == DIRECT and self.also:
            return (self.direct, self.also)
        return (self.task(algorithm),)


def choose_plan(sites: list[ConvSite], latency_of: Callable[[str], float | None],
                pairs: list[ConvSite] | None = None) -> ConvPlan:
    """Per site, the algorithm whose tasks' best stored kernels are fastest in sum
    (`latency_of` a task hash -> seconds, None when never measured). A variant never
    measured is never chosen; with nothing measured, a site runs direct (a pair's 1x1
    kernel never measured counts as free, which favours the direct form)."""
    return ConvPlan(tuple(_fastest(site, latency_of) for site in sorted(sites, key=_index)),
                    pairs=tuple(_fastest(site, latency_of)
                                for site in sorted(pairs or [], key=_index)))


def _index(site: ConvSite) -> int:
    return site.index


def _fastest(site: ConvSite, latency_of: Callable[[str], float | None]) -> str:
    measured = {name: latency_of(site.task(name)) for name in (DIRECT, *site.variants)}
    known = {name: sec for name, sec in measured.items() if sec is not None}
    if DIRECT in known and site.also:
        known[DIRECT] += latency_of(site.also) or 0.0
    return min(known, key=lambda name: (known[name], name)) if known else DIRECT
