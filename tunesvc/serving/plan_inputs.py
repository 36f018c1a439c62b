"""What `tunesvc plan` is told or finds out: objectives, latencies given on the command
line, and for the rest a measurement at each whole-core share of the machine."""

from __future__ import annotations

import re
from typing import Callable

from tunesvc.errors import UserError
from tunesvc.serving.plan import ShareLatency
from tunesvc.serving.spec import Objective, ServedModel

_OBJECTIVE_RE = re.compile(r"^(?P<name>[^:@]+):(?P<p99>[0-9.]+)(ms)?@(?P<rate>[0-9.]+)(/s)?$")
_LATENCY_RE = re.compile(r"^(?P<name>[^:@]+)@(?P<share>\d+):(?P<median>[0-9.]+)(:(?P<p99>[0-9.]+))?$")


def parse_objective(text: str) -> tuple[str, Objective]:
    """'resnet18:30@20': p99 at most 30 ms at 20 requests/s."""
    match = _OBJECTIVE_RE.match(text.strip())
    if not match:
        raise UserError(f"objective {text!r} is not MODEL:P99_MS@RATE, e.g. resnet18:30@20 "
                        "(p99 <= 30 ms at 20 requests/s)")
    return match["name"], Objective(float(match["p99"]), float(match["rate"]))


def parse_latency(text: str) -> tuple[str, ShareLatency]:
    """'resnet18@50:25.3:27.0': median 25.3 ms and p99 27.0 ms at 50% (p99 = median if
    left out)."""
    match = _LATENCY_RE.match(text.strip())
    if not match:
        raise UserError(f"latency {text!r} is not MODEL@SHARE:MEDIAN_MS[:P99_MS], e.g. "
                        "resnet18@50:25.3:27.0")
    median = float(match["median"])
    p99 = float(match["p99"]) if match["p99"] else median
    if p99 < median or median <= 0:
        raise UserError(f"latency {text!r}: need 0 < median <= p99")
    return match["name"], ShareLatency(int(match["share"]), median, p99)


def whole_core_shares(machine_cores: int) -> list[int]:
    """50 and 100 on 2 cores; 25, 50, 75, 100 on 4: shares that are whole cores."""
    return sorted({round(100 * k / machine_cores) for k in range(1, machine_cores + 1)})


def gather_latencies(models: list[ServedModel], given: list[tuple[str, ShareLatency]],
                     shares: list[int],
                     measure: Callable[[ServedModel, int], ShareLatency] | None,
                     progress: Callable[[str], None]) -> dict[str, list[ShareLatency]]:
    """Per model, its latency at each share: given ones first, the rest measured (or left
    out when `measure` is None)."""
    names = {m.name for m in models}
    unknown = sorted({name for name, _ in given} - names)
    if unknown:
        raise UserError(f"--latency for {unknown[0]!r}, which is not among the models "
                        f"({', '.join(sorted(names))})")
    found: dict[str, list[ShareLatency]] = {m.name: [] for m in models}
    for name, latency in given:
        found[name].append(latency)
    for model in models:
        known = {latency.share for latency in found[model.name]}
        for share in shares:
            if share not in known and measure is not None:
                progress(f"measuring {model.name} at {share}% ...")
                found[model.name].append(measure(model, share))
    return found
