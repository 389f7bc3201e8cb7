"""npu-dse hardware models: pure JAX, jit/vmap/grad-friendly.

>>> from hw import evaluate, get_preset, layers
>>> wl = layers.workload([layers.dense("fc", in_features=512, out_features=512, tokens=64)])
>>> rep = evaluate(get_preset("edge-tpu-like"), wl)
>>> bool(rep.total_latency_s > 0) and bool(rep.fits[0])
True
"""

import jax

# Exact cycle and access counts exceed 2**31 (and float32's 2**24) on large layers, so the
# cost model computes in 64 bits. This is the package's one import-time setting.
jax.config.update("jax_enable_x64", True)

from hw import engine, graph, layers, quant, vector  # noqa: E402
from hw.arith import EXACT, Arith  # noqa: E402
from hw.cost import default_mapping, evaluate  # noqa: E402
from hw.engine import QuantizedModel, compile_model, quantize_model, run_model  # noqa: E402
from hw.execute import quantize_multiplier, requantize, run_gemm  # noqa: E402
from hw.presets import get_preset, preset_names  # noqa: E402
from hw.types import (  # noqa: E402
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

from hw import gpu  # noqa: E402
from hw.gpu import GPUConfig, GPUReport, evaluate_gpu, get_gpu_preset  # noqa: E402

__all__ += ["GPUConfig", "GPUReport", "evaluate_gpu", "get_gpu_preset", "gpu"]
