"""The ``evaluate`` use case: a trained model executed bit-accurately on a simulated design.

:func:`evaluate` quantizes a checkpoint post-training at the design's widths (calibrated on
``CALIBRATION_SAMPLES`` training samples), runs the test set on the design
(``hw.run_model``) and returns accuracy beside float accuracy, with the exact cost of one
inference (batch 1), checked and mapped as :func:`npu_dse.simulate` does.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from hw import graph, run_model
from hw.x64 import x64
from models import data, set_qat, train
from npu_dse.calibration import CALIBRATION_SAMPLES
from npu_dse.designs import DesignFile
from npu_dse.inputs import boundary
from npu_dse.simulate import Simulation, simulate


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """Accuracy by execution and the cost of one inference."""

    model: str  # cnn or transformer
    design: str  # what the design started from
    w_bits: int
    a_bits: int
    test_samples: int
    accuracy: float  # on the simulated NPU
    float_accuracy: float  # the float model
    simulation: Simulation  # one inference at batch 1

    def to_dict(self) -> dict:
        """The JSON object of ``npu-dse evaluate --json``."""
        total = self.simulation.to_dict()["total"]
        return {
            "model": self.model,
            "design": self.design,
            "w_bits": self.w_bits,
            "a_bits": self.a_bits,
            "test_samples": self.test_samples,
            "accuracy": self.accuracy,
            "float_accuracy": self.float_accuracy,
            "latency_s": total["latency_s"],
            "energy_j": total["energy_j"],
            "power_w": total["power_w"],
            "tops_per_w": total["tops_per_w"],
            "area_mm2": total["area_mm2"],
            "macs": total["macs"],
        }


@x64
def evaluate(checkpoint: str | Path, design: DesignFile, label: str = "") -> Evaluation:
    """Execute the checkpoint's model on ``design`` (see the module docstring)."""
    model, cfg = boundary(train.load_checkpoint)(checkpoint)
    npu = design.config
    ds = data.load(cfg.model)
    set_qat(model, False)
    float_acc = train.evaluate(model, ds.x_test, ds.y_test)["accuracy"]
    qm = train.ptq(model, ds.x_train[:CALIBRATION_SAMPLES], int(npu.w_bits), int(npu.a_bits))
    one = graph.workload(qm.model, (1, *ds.x_test.shape[1:]))
    sim = simulate(one, design, base=label or npu.name)
    logits, _ = run_model(qm, ds.x_test, npu)
    acc = float(np.mean(np.argmax(np.asarray(logits), -1) == ds.y_test))
    return Evaluation(
        model=cfg.model,
        design=label or npu.name,
        w_bits=int(npu.w_bits),
        a_bits=int(npu.a_bits),
        test_samples=int(len(ds.y_test)),
        accuracy=acc,
        float_accuracy=float(float_acc),
        simulation=sim,
    )
