"""The quantized-model engine: quantize a :mod:`hw.graph` model, run it on a simulated NPU.

The engine is split by concern; this module gathers its public names:

* :mod:`hw.planning`: which width each tensor and workload layer gets
  (:func:`activation_widths`, :func:`layers_with_widths`);
* :mod:`hw.ptq`: post-training quantization (:func:`quantize_model`, :class:`QuantizedModel`);
* :mod:`hw.interpreter`: bit-accurate execution and its cost (:func:`compile_model`,
  :func:`run_model`, :func:`layer_bits`);
* :mod:`hw.nodes`: what each node kind does in each of them; :mod:`hw.steps`: the integer
  parameters of each node kind; :mod:`hw.kernels`: the integer kernels.
"""

from hw.interpreter import compile_model, layer_bits, run_model
from hw.kernels import im2col
from hw.planning import Bits, activation_widths, layers_with_widths
from hw.ptq import QuantizedModel, quantize_model

__all__ = [
    "Bits",
    "QuantizedModel",
    "activation_widths",
    "compile_model",
    "im2col",
    "layer_bits",
    "layers_with_widths",
    "quantize_model",
    "run_model",
]
