"""A differentiable accuracy proxy for per-layer bit widths, calibrated on a trained model.

Rounding a tensor to ``b`` bits with a uniform quantizer adds noise of power ``step^2 / 12``
with ``step`` proportional to ``2^-b`` (Widrow's noise model), i.e. proportional to ``4^-b``:
each bit more quarters it. Assuming each layer's noise is small, independent of the other
layers' and costs accuracy in proportion to its power (the first-order model of Zhou et al.,
"Adaptive Quantization for Deep Neural Network", AAAI 2018), the accuracy of a network with
weight widths ``w_l`` and activation widths ``a_l`` is

    accuracy = float_accuracy - sum_l sens_w[l] 4^(-w_l) - sum_l sens_a[l] 4^(-a_l)

with one sensitivity per layer and operand, fitted to the accuracy measured by executing the
model with one layer narrowed at a time (:func:`fit`; ``npu_dse.calibration.calibrate``).
Widths may be fractional, so the proxy is smooth in them; reported accuracies come from
executing the chosen designs.

>>> import numpy as np
>>> m = AccuracyModel(np.float64(0.9), np.array([2.56, 0.0]), np.array([0.0, 25.6]))
>>> # 0.9 - 2.56 / 4^4 - 25.6 / 4^8 = 0.9 - 0.01 - 0.000390625
>>> round(float(predict(m, np.array([4.0, 8.0]), np.array([8.0, 8.0]))), 9)
0.889609375
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from hw.types import Array, pytree_dataclass
from hw.x64 import x64


@pytree_dataclass
class AccuracyModel:
    """Sensitivities of a trained model's accuracy (0-1) to each layer's widths."""

    float_accuracy: Array  # shape=() accuracy as every width grows (the unquantized model)
    sens_w: Array  # shape=(L,) accuracy lost per unit of 4^-w_bits; 0 where weights don't count
    sens_a: Array  # shape=(L,) accuracy lost per unit of 4^-a_bits; 0 where widths don't count


@x64
def predict(model: AccuracyModel, w_bits: Array, a_bits: Array) -> Array:
    """``float_accuracy - sum_l sens_w[l] 4^-w_bits[l] - sum_l sens_a[l] 4^-a_bits[l]``.

    ``w_bits`` and ``a_bits`` have shape ``(..., L)`` (float widths allowed); the sums run over
    the last axis, so batches of designs keep their leading axes.
    """
    noise_w = jnp.exp2(-2.0 * jnp.asarray(w_bits, jnp.float64))
    noise_a = jnp.exp2(-2.0 * jnp.asarray(a_bits, jnp.float64))
    drop = jnp.sum(model.sens_w * noise_w, axis=-1) + jnp.sum(model.sens_a * noise_a, axis=-1)
    return model.float_accuracy - drop


def fit(reference_accuracy, bits, accuracy_w, accuracy_a) -> AccuracyModel:
    """Sensitivities from single-layer measurements.

    ``accuracy_w[i, l]`` (resp. ``accuracy_a``) is the accuracy measured with only layer
    ``l``'s weights (activations) at ``bits[i]`` and every other width so wide that its noise
    is negligible; ``reference_accuracy`` is the accuracy with every width that wide. With
    ``drop = max(reference_accuracy - accuracy, 0)`` (a gain is noise, not a sensitivity),
    ``sens`` is the least-squares fit of ``drop_i = sens 4^-bits[i]``:

        sens = sum_i drop_i 4^-bits[i] / sum_i 4^-2 bits[i]

    which, for one width, is ``drop 4^bits`` and reproduces the measured drop. A layer with
    ``NaN`` measurements (its width does not change the model) gets ``sens = 0``.

    >>> m = fit(0.9, [4], np.array([[0.89, np.nan, 0.95]]), np.array([[0.9, 0.8, 0.9]]))
    >>> np.round(m.sens_w, 2).tolist(), np.round(m.sens_a, 1).tolist()
    ([2.56, 0.0, 0.0], [0.0, 25.6, 0.0])
    """
    bits = np.asarray(bits, np.float64)
    if bits.ndim != 1 or bits.size == 0 or np.any(bits < 1):
        raise ValueError(f"bits must be a non-empty list of widths >= 1, got {bits.tolist()}")
    noise = np.exp2(-2.0 * bits)[:, None]  # shape=(B, 1)

    def sens(accuracy):
        accuracy = np.asarray(accuracy, np.float64)
        if accuracy.ndim != 2 or accuracy.shape[0] != bits.size:
            raise ValueError(f"accuracies must have shape ({bits.size}, L), got {accuracy.shape}")
        drop = np.nan_to_num(np.maximum(reference_accuracy - accuracy, 0.0), nan=0.0)
        return np.sum(drop * noise, axis=0) / np.sum(noise**2)

    return AccuracyModel(np.float64(reference_accuracy), sens(accuracy_w), sens(accuracy_a))
