"""Which nodes of a Ray cluster may run a tuning run's workers: those with the target's CPU.

A node says which CPU it has by declaring a custom resource when it joins (`tunesvc
node-resources` prints the `ray start` flag); each worker then asks for a sliver of the
resource its target needs, so Ray places it only there. A cluster that declares no such
resource is taken to be of one CPU; its workers still refuse to measure for another CPU
(`workers.cpu_isa.host_mismatch`), so no wrong record is stored either way.
"""

from __future__ import annotations

import json
from typing import Any

from tunesvc.errors import UserError
from workers.cpu_isa import ISA_RESOURCE_PREFIX, host_cpu_attrs, isa_of, isa_resource

NODE_UNITS = 1000  # what a node declares: enough for any number of workers on it
PER_WORKER = 0.001  # what each worker asks for


def isa_placement(attrs: dict[str, Any], cluster_resources: dict[str, float]) -> dict[str, float]:
    """Custom resources a worker for a target of `attrs` asks Ray for ({} where any node
    will do); UserError if the cluster declares CPUs and none is the target's."""
    needed = isa_resource(attrs)
    declared = sorted(r for r in cluster_resources if r.startswith(ISA_RESOURCE_PREFIX))
    if needed is None or not declared:
        return {}
    if needed not in declared:
        raise UserError(f"no node of this Ray cluster has the target's CPU, {isa_of(attrs)}: "
                        f"its nodes declare {', '.join(declared)}. Start nodes of that CPU "
                        f"with `ray start ... {node_flag(needed)}`")
    return {needed: PER_WORKER}


def node_flag(resource: str) -> str:
    return f"--resources='{json.dumps({resource: NODE_UNITS})}'"


def this_node_flag() -> str | None:
    """The `ray start` flag that declares this machine's CPU, or None (no CPU named)."""
    resource = isa_resource({"kind": "llvm", **host_cpu_attrs()})
    return node_flag(resource) if resource else None
