"""npu-dse hardware models: pure JAX, jit/vmap/grad-friendly."""

import jax

# Exact cycle and access counts exceed 2**31 (and float32's 2**24) on large layers, so the
# cost model computes in 64 bits. This is the package's one import-time setting.
jax.config.update("jax_enable_x64", True)
