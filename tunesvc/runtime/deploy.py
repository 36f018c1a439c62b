"""`tunesvc compile`'s output: a compiled model's library copied out with its manifest
beside it (`tunesvc.runtime.library` loads the pair back, with no database)."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import tvm

from tunesvc.errors import UserError
from tunesvc.runtime.files import write_whole
from tunesvc.runtime.library import (MANIFEST_FORMAT, InputSpec, Manifest, OperatorSpec,
                                     file_sha256, manifest_path)
from tunesvc.runtime.tuned import TunedModel


def manifest_of(tuned: TunedModel) -> Manifest:
    """What `tuned`'s library is and which record served each of its operators."""
    model = tuned.model
    return Manifest(
        format=MANIFEST_FORMAT, model=model.source, fingerprint=model.fingerprint,
        target=tuned.at.attrs,
        device_type=int(tuned.target.get_target_device_type()), share=tuned.share.label,
        share_percent=tuned.share.percent, tvm_version=tvm.__version__,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        inputs=[InputSpec(name, list(shape), model.input_dtypes[name])
                for name, shape in model.input_shapes.items()],
        operators=[OperatorSpec(
            s.task_name, s.weight, s.lookup.choice.rule, s.lookup.choice.chosen_percent,
            s.lookup.record.id if s.lookup.record else None, s.lookup.workload_shash,
            s.tuned_run_sec) for s in tuned.sources],
        fixed_inputs={name: value.tolist() for name, value in model.input_values.items()},
        library_sha256=file_sha256(tuned.library_path),
    )


def write_library(tuned: TunedModel, out: Path) -> Manifest:
    """Copy `tuned`'s library to `out` and write its manifest beside it; each file appears
    whole (written next to it, then renamed) or not at all."""
    check_output(out)
    manifest = manifest_of(tuned)
    write_whole(out, lambda tmp: shutil.copyfile(tuned.library_path, tmp))
    write_whole(manifest_path(out),
                lambda tmp: tmp.write_text(json.dumps(asdict(manifest), indent=2) + "\n"))
    return manifest


def check_output(out: Path) -> None:
    if not out.parent.is_dir():
        raise UserError(f"-o {out}: folder {out.parent} does not exist")
