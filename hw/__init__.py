"""npu-dse hardware models: pure JAX, jit/vmap/grad-friendly.

>>> from hw import evaluate, get_preset, layers
>>> wl = layers.workload([layers.dense("fc", in_features=512, out_features=512, tokens=64)])
>>> rep = evaluate(get_preset("edge-tpu-like"), wl)
>>> float(rep.total_latency_s) > 0 and bool(rep.fits[0])
True
"""

from hw import engine, graph, layers, quant, vector
from hw.arith import EXACT, Arith
from hw.cost import default_mapping, evaluate
from hw.execute import quantize_multiplier, requantize, run_gemm
from hw.interpreter import compile_model, run_model
from hw.presets import get_preset, preset_names
from hw.ptq import QuantizedModel, quantize_model
from hw.types import (
    DATAFLOWS,
    LOOP_ORDERS,
    CostReport,
    DramTraffic,
    LayerBits,
    Mapping,
    NPUConfig,
    TechTable,
    Workload,
    canonical,
)

__all__ = [
    "DATAFLOWS",
    "EXACT",
    "QuantizedModel",
    "LOOP_ORDERS",
    "Arith",
    "CostReport",
    "DramTraffic",
    "LayerBits",
    "Mapping",
    "NPUConfig",
    "TechTable",
    "Workload",
    "canonical",
    "compile_model",
    "default_mapping",
    "engine",
    "evaluate",
    "get_preset",
    "graph",
    "layers",
    "preset_names",
    "quant",
    "quantize_model",
    "quantize_multiplier",
    "requantize",
    "run_gemm",
    "run_model",
    "vector",
]

from hw import gpu
from hw.gpu import GPUConfig, GPUReport, evaluate_gpu, get_gpu_preset

__all__ += ["GPUConfig", "GPUReport", "evaluate_gpu", "get_gpu_preset", "gpu"]
