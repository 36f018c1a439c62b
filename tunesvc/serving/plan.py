"""Choose each model's share and replica count so that all fit on the device and every
latency objective holds with the most room to spare.

A model at a share is described by its measured latency there (median and p99 of one
call). Its replicas form one queue with Poisson arrivals and calls of constant time (a
compiled model's call barely varies): the chance of waiting is Erlang C's, the wait's
tail is that of one server c times as fast (P(wait > t) = C e^(-theta t), theta the root
of rate (e^(theta D / c) - 1) = theta, exact for one replica), and predicted p99 = the
call's p99 + the wait's 99th percentile. A plan's room is, over its
models, the smallest ratio of the highest rate meeting the objective to the rate asked
for; the plan chosen has the largest room, then the fewest cores. Pure arithmetic: it
measures nothing and reads nothing.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Callable

from tunesvc.serving.spec import Objective, ServedModel

TAIL = 0.01  # the p in p99


@dataclass(frozen=True)
class ShareLatency:
    share: int
    median_ms: float
    p99_ms: float


@dataclass(frozen=True)
class Option:
    """One model at one share with some replicas: what it costs and what it sustains."""

    model: ServedModel
    share: int
    replicas: int
    cores: int
    max_rate: float  # highest request rate at which its predicted p99 meets the objective
    p99_at_rate_ms: float  # predicted p99 at the objective's rate (inf if overloaded)

    @property
    def room(self) -> float:
        objective = self.model.objective
        return math.inf if objective is None or objective.rate == 0 else self.max_rate / objective.rate


@dataclass(frozen=True)
class Plan:
    options: tuple[Option, ...]  # empty when no plan meets every objective
    problems: tuple[str, ...]  # why not, one line per objective that fails

    @property
    def room(self) -> float:
        return min((o.room for o in self.options), default=0.0)


def predicted_p99_ms(latency: ShareLatency, replicas: int, rate: float) -> float:
    """The call's p99 plus the queue's p99 wait at `rate` requests/s (inf if overloaded)."""
    service_sec = latency.median_ms / 1e3
    spare = replicas / service_sec - rate
    if spare <= 0:
        return math.inf
    waiting = _erlang_c(replicas, rate * service_sec)
    if waiting <= TAIL:
        return latency.p99_ms
    decay = _tail_decay(rate, service_sec / replicas)
    return latency.p99_ms + math.log(waiting / TAIL) / decay * 1e3


def max_rate(latency: ShareLatency, replicas: int, objective_p99_ms: float) -> float:
    """The highest rate whose predicted p99 meets the objective (0 if even one request
    alone does not)."""
    if latency.p99_ms > objective_p99_ms:
        return 0.0
    low, high = 0.0, replicas * 1e3 / latency.median_ms
    for _ in range(60):
        middle = (low + high) / 2
        if predicted_p99_ms(latency, replicas, middle) <= objective_p99_ms:
            low = middle
        else:
            high = middle
    return low


def make_plan(models: list[ServedModel], latencies: dict[str, list[ShareLatency]],
              machine_cores: int, cores_of: Callable[[int], int]) -> Plan:
    """The plan with the most room, or the reasons none exists. `cores_of(share)` is how
    many cores a share takes (on a GPU, pass percent units: cores_of = identity, 100)."""
    choices = [_options(m, latencies.get(m.name, []), machine_cores, cores_of) for m in models]
    best: tuple[Option, ...] = ()
    for combo in itertools.product(*choices):
        if sum(o.cores for o in combo) > machine_cores or min(o.room for o in combo) < 1:
            continue
        if not best or _better(combo, best):
            best = combo
    if best:
        return Plan(best, ())
    return Plan((), tuple(_problems(models, choices, machine_cores)))


def _options(model: ServedModel, latencies: list[ShareLatency], machine_cores: int,
             cores_of: Callable[[int], int]) -> list[Option]:
    objective = model.objective or Objective(math.inf, 0.0)
    found = []
    for latency in latencies:
        per_replica = cores_of(latency.share)
        for replicas in range(1, machine_cores // per_replica + 1):
            found.append(Option(model, latency.share, replicas, per_replica * replicas,
                                max_rate(latency, replicas, objective.p99_ms),
                                predicted_p99_ms(latency, replicas, objective.rate)))
    return found


def _better(combo: tuple[Option, ...], best: tuple[Option, ...]) -> bool:
    room, best_room = min(o.room for o in combo), min(o.room for o in best)
    if not math.isclose(room, best_room, rel_tol=1e-6):
        return room > best_room
    return sum(o.cores for o in combo) < sum(o.cores for o in best)


def _problems(models: list[ServedModel], choices: list[list[Option]],
              machine_cores: int) -> list[str]:
    problems = []
    for model, options in zip(models, choices):
        if not options:
            problems.append(f"{model.name}: no latency known at any share")
            continue
        meeting = [o for o in options if o.room >= 1]
        if not meeting:
            problems.append(_unmet(model, options, machine_cores))
    if problems:
        return problems
    least = {m.name: min(o.cores for o in opts if o.room >= 1) for m, opts in zip(models, choices)}
    needs = ", ".join(f"{name} at least {cores}" for name, cores in least.items())
    return [f"together the objectives need {sum(least.values())} cores ({needs}); the device "
            f"has {machine_cores}"]


def _unmet(model: ServedModel, options: list[Option], machine_cores: int) -> str:
    assert model.objective is not None
    best = max(options, key=lambda o: o.max_rate)
    at_rate = min(options, key=lambda o: o.p99_at_rate_ms)
    p99 = "overloaded" if math.isinf(at_rate.p99_at_rate_ms) else f"{at_rate.p99_at_rate_ms:.1f} ms"
    return (f"{model.name}: p99 <= {model.objective.p99_ms:g} ms at {model.objective.rate:g} "
            f"requests/s cannot be met on {machine_cores} cores (best at that rate: p99 {p99} "
            f"at {at_rate.share}% x {at_rate.replicas}); it would need a rate of at most "
            f"{best.max_rate:.1f}/s (at {best.share}% x {best.replicas}) or a looser p99")


def _tail_decay(rate: float, service_sec: float) -> float:
    """theta > 0 with rate * (exp(theta * service_sec) - 1) = theta (needs rate * service < 1)."""
    def excess(theta: float) -> float:
        return rate * math.expm1(theta * service_sec) - theta

    low, high = 1e-9, 1.0 / service_sec
    while excess(high) < 0:
        high *= 2
    for _ in range(100):
        middle = (low + high) / 2
        low, high = (middle, high) if excess(middle) < 0 else (low, middle)
    return (low + high) / 2


def _erlang_c(servers: int, load: float) -> float:
    """Probability that an arrival waits, in an M/M/c queue offered `load` erlangs."""
    term, total = 1.0, 1.0
    for k in range(1, servers):
        term *= load / k
        total += term
    last = term * load / servers / (1 - load / servers)
    return last / (total + last)
