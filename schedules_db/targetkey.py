"""How a TVM target is keyed in the store, independent of the share it was tuned at.

A CPU share changes the target's `num-cores`, yet a schedule tuned at 100% is still a
candidate for a model running at 50% (the nearest-share rule). So the key drops the
attributes that only a share changes; the exact target stays on each record.
"""

from __future__ import annotations

import json
from typing import Any

from schedules_db.records import SliceKey

SHARE_DEPENDENT_ATTRS = ("num-cores",)


def target_json(target: Any) -> str:
    """The canonical JSON text of a `tvm.target.Target` (sorted keys): the one place a
    target's attributes are read (TVM prints a target as JSON)."""
    printed = str(target)
    return json.dumps(json.loads(printed), sort_keys=True)


def target_key(target_json_text: str) -> str:
    """Canonical JSON of the target without share-dependent attributes."""
    attrs = json.loads(target_json_text)
    for name in SHARE_DEPENDENT_ATTRS:
        attrs.pop(name, None)
    return json.dumps(attrs, sort_keys=True)


def target_kind(target_json_text: str) -> str:
    return str(json.loads(target_json_text)["kind"])


def slice_key(target_json_text: str, share_kind: str, share_percent: int) -> SliceKey:
    """The store slice of a target (canonical JSON) at a share."""
    return SliceKey(target_key(target_json_text), target_kind(target_json_text), share_kind,
                    share_percent)
