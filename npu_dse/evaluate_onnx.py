"""The ``evaluate --onnx`` use case: an ONNX model with weights executed on a simulated design.

:func:`evaluate_onnx` converts the model (:mod:`npu_dse.onnx_exec`), runs the inputs through
the engine's fp32 path and, quantized post-training at the design's ``w_bits``/``a_bits``
(calibrated on the first ``CALIBRATION_SAMPLES`` inputs), bit-accurately on the design
(``hw.run_model``). With labels it reports both accuracies; always the top-1 agreement of the
quantized outputs with the float ones and their relative error ``||q - f|| / ||f||``, with the
exact cost of one inference (batch 1).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnx
from onnx import external_data_helper

from hw import graph, quantize_model, run_model
from hw.x64 import x64
from npu_dse import onnx_exec, onnx_import
from npu_dse.calibration import CALIBRATION_SAMPLES
from npu_dse.designs import DesignFile
from npu_dse.inputs import boundary
from npu_dse.simulate import Simulation, simulate


@dataclasses.dataclass(frozen=True)
class OnnxEvaluation:
    """Agreement with the float model (and accuracy with labels) and one inference's cost."""

    model: str  # the ONNX file
    design: str
    w_bits: int
    a_bits: int
    samples: int
    top1_agreement: float  # argmax of the quantized outputs equals the float one's, 0-1
    relative_error: float  # ||quantized - float|| / ||float|| over all outputs
    accuracy: float | None  # against the labels, on the simulated NPU
    float_accuracy: float | None  # against the labels, the float model
    simulation: Simulation  # one inference at batch 1

    def to_dict(self) -> dict:
        """The JSON object of ``npu-dse evaluate --onnx ... --json``."""
        total = self.simulation.to_dict()["total"]
        keys = ("latency_s", "energy_j", "power_w", "tops_per_w", "area_mm2", "macs")
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        del fields["simulation"]
        return fields | {k: total[k] for k in keys}


@boundary
def read_array(path: str | Path, flag: str, key: str | None = None) -> np.ndarray:
    """The array of a ``.npy`` file, or of a ``.npz`` file (``key``, else its only array)."""
    path = Path(path)
    try:
        found = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ValueError(f"{flag} {path}: not a NumPy .npy/.npz file ({err})") from None
    if isinstance(found, np.ndarray):
        return found
    with found:
        names = list(found.files)
        if key in names:
            return found[key]
        if len(names) != 1:
            raise ValueError(f"{flag} {path}: expected one array or one named {key!r}; got {names}")
        return found[names[0]]


def load_with_weights(path: Path) -> onnx.ModelProto:
    """The model and its weights (from an external data file next to it where it has one)."""
    model = onnx_import.load_model(path)
    for tensor in model.graph.initializer:
        if not external_data_helper.uses_external_data(tensor):
            continue
        location = {e.key: e.value for e in tensor.external_data}.get("location", "")
        if not (path.parent / location).is_file():
            raise ValueError(
                f"{path}: the external data file {location!r} of its weights is absent; "
                "costing needs shapes only, execution needs the weights"
            )
    external_data_helper.load_external_data_for_model(model, str(path.parent))
    return model


def _top1(y) -> np.ndarray:
    return np.argmax(np.reshape(y, (len(y), -1)), axis=-1)


@boundary
@x64
def evaluate_onnx(
    path: str | Path, x, design: DesignFile, labels=None, label: str = ""
) -> OnnxEvaluation:
    """Execute the ONNX model at ``path`` on the batch ``x`` (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"ONNX file not found: {path}")
    model = load_with_weights(path)
    x = np.asarray(x, np.float32)
    if x.ndim < 1 or len(x) < 1:
        raise ValueError(f"--inputs: expected a batch of at least one input, got shape {x.shape}")
    if labels is not None and np.shape(labels) != (len(x),):
        raise ValueError(f"--labels: expected {len(x)} labels, got shape {np.shape(labels)}")
    onnx_import.set_batch(model, str(path), len(x))
    engine = onnx_exec.to_graph(model, str(path))
    npu = design.config
    xe = engine.to_engine(x)
    qm = quantize_model(
        engine.model, xe[:CALIBRATION_SAMPLES], w_bits=int(npu.w_bits), a_bits=int(npu.a_bits)
    )
    out, _ = run_model(qm, xe, npu)
    quantized, exact = engine.to_onnx(out), engine.forward_float(x)
    norm = float(np.linalg.norm(exact))
    error = float(np.linalg.norm(quantized - exact)) / norm if norm else 0.0
    one = graph.workload(engine.model, (1, *xe.shape[1:]))
    acc = None if labels is None else float(np.mean(_top1(quantized) == labels))
    float_acc = None if labels is None else float(np.mean(_top1(exact) == labels))
    return OnnxEvaluation(
        model=str(path),
        design=label or npu.name,
        w_bits=int(npu.w_bits),
        a_bits=int(npu.a_bits),
        samples=len(x),
        top1_agreement=float(np.mean(_top1(quantized) == _top1(exact))),
        relative_error=error,
        accuracy=acc,
        float_accuracy=float_acc,
        simulation=simulate(one, design, base=label or npu.name),
    )
