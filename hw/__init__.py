"""npu-dse hardware models: pure JAX, jit/vmap/grad-friendly.

>>> from hw import evaluate, get_preset, layers
>>> wl = layers.workload([layers.dense("fc", in_features=512, out_features=512, tokens=64)])
>>> rep = evaluate(get_preset("edge-tpu-like"), wl)
>>> float(rep.total_latency_s) > 0 and bool(rep.fits[0])
True
"""

from hw import lazy as _lazy

_EXPORTS = {
    "DATAFLOWS": "hw.types",
    "EXACT": "hw.arith",
    "QuantizedModel": "hw.ptq",
    "LOOP_ORDERS": "hw.types",
    "Arith": "hw.arith",
    "CostReport": "hw.types",
    "DramTraffic": "hw.types",
    "LayerBits": "hw.types",
    "Mapping": "hw.types",
    "NPUConfig": "hw.types",
    "TechTable": "hw.types",
    "Workload": "hw.types",
    "canonical": "hw.types",
    "compile_model": "hw.interpreter",
    "default_mapping": "hw.cost",
    "engine": "hw.engine:",
    "evaluate": "hw.cost",
    "get_preset": "hw.presets",
    "graph": "hw.graph:",
    "layers": "hw.layers:",
    "preset_names": "hw.presets",
    "quant": "hw.quant:",
    "quantize_model": "hw.ptq",
    "quantize_multiplier": "hw.execute",
    "requantize": "hw.execute",
    "run_gemm": "hw.execute",
    "run_model": "hw.interpreter",
    "run_decode": "hw.kv_decode",
    "vector": "hw.vector:",
    "GPUConfig": "hw.gpu",
    "GPUReport": "hw.gpu",
    "evaluate_gpu": "hw.gpu",
    "get_gpu_preset": "hw.gpu",
    "gpu": "hw.gpu:",
}
"""Exported name -> the module that defines it (``module:``: the submodule itself); each is
imported on first use (``hw.lazy``), so ``import hw`` imports no JAX."""

__all__ = list(_EXPORTS)
_lazy.install(__name__, _EXPORTS)
