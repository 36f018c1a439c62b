"""A deployable model: the compiled library of a model at one share, with a manifest beside
it, and loading it back in a serving process that has no schedule database.

`tunesvc compile MODEL --share S -o model.so` writes `model.so` and `model.so.json`; the
manifest says what the library is (model fingerprint, target, share, inputs) and which
record served each operator. `load_library("model.so")` needs only TVM and the two files.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import tvm

from tunesvc.errors import UserError
from tunesvc.runtime.vm import VmModel
from workers.shares import Share

MANIFEST_FORMAT = 1


@dataclass(frozen=True)
class InputSpec:
    name: str
    shape: list[int]
    dtype: str


@dataclass(frozen=True)
class OperatorSpec:
    """One operator task and the schedule it was compiled with (record None: TVM's default)."""

    task: str
    uses: int
    rule: str  # exact, nearest, none
    share_percent: int | None
    record_id: int | None
    workload_shash: str
    tuned_run_sec: float | None


@dataclass(frozen=True)
class Manifest:
    format: int
    model: str
    fingerprint: str
    target: dict
    device_type: int
    share: str
    share_percent: int
    tvm_version: str
    created_at: str
    inputs: list[InputSpec]
    operators: list[OperatorSpec]
    fixed_inputs: dict[str, object] = field(default_factory=dict)  # --input-value: compiled in
    library_sha256: str = ""  # of the library file: a damaged copy is refused, not loaded

    @classmethod
    def read(cls, path: Path) -> Manifest:
        data = json.loads(path.read_text())
        if data.get("format") != MANIFEST_FORMAT:
            raise UserError(f"{path}: manifest format {data.get('format')!r} is not "
                            f"{MANIFEST_FORMAT}; compile the model again")
        data["inputs"] = [InputSpec(**i) for i in data["inputs"]]
        data["operators"] = [OperatorSpec(**o) for o in data["operators"]]
        return cls(**data)

    @property
    def tuned_operators(self) -> int:
        return sum(1 for o in self.operators if o.record_id is not None)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest_path(library: Path) -> Path:
    return library.with_name(library.name + ".json")


class DeployedModel(VmModel):
    """A library written by `tunesvc compile`: call it with one NumPy array per input,
    in `manifest.inputs` order."""

    def __init__(self, library: Path, manifest: Manifest) -> None:
        super().__init__(library, manifest.device_type, len(manifest.inputs))
        self.manifest = manifest


def load_library(path: str | Path, hold: bool = False) -> DeployedModel:
    """Load a library written by `tunesvc compile` (and its manifest); no database needed.
    With `hold=True` the process is first held to the share the library was compiled for
    (on CPU every thread on the share's cores), as `load(..., hold=True)` does."""
    library = Path(path)
    manifest_file = manifest_path(library)
    for needed in (library, manifest_file):
        if not needed.is_file():
            raise UserError(f"{needed} does not exist (write both files with `tunesvc compile`)")
    manifest = Manifest.read(manifest_file)
    if manifest.tvm_version != tvm.__version__:
        raise UserError(f"{library} was compiled with TVM {manifest.tvm_version}; this is "
                        f"TVM {tvm.__version__}: compile it again")
    if manifest.library_sha256 and file_sha256(library) != manifest.library_sha256:
        # loading a cut-short library can crash the process (SIGBUS), not just fail
        raise UserError(f"{library} is damaged: its contents are not those its manifest "
                        f"was written for (copied in part?); write it again with "
                        f"`tunesvc compile`")
    if hold:
        share = Share(manifest.share.partition(":")[0], manifest.share_percent)
        share.backend.validate(share)
        share.backend.hold(share)
    return DeployedModel(library, manifest)
