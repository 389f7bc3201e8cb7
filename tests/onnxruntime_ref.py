"""onnxruntime as a reference, run in a process of its own.

onnxruntime ships its own builds of libraries that jaxlib also carries; loading both into one
long test process is not something either project supports, so the tests never import it
beside JAX: each reference run is a short child process.
"""

import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

_RUN = """
import sys
import numpy as np
import onnxruntime as ort
model, inputs, out = sys.argv[1:4]
session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
feeds = dict(np.load(inputs))
name = session.get_inputs()[0].name
batches = [session.run(None, {name: feeds["x"][i : i + int(sys.argv[4])]})[0]
           for i in range(0, len(feeds["x"]), int(sys.argv[4]))]
np.save(out, np.concatenate(batches))
"""


def require() -> None:
    """Skip the calling test module with a reason when onnxruntime is not installed."""
    if importlib.util.find_spec("onnxruntime") is None:
        pytest.skip(
            "onnxruntime is not installed (it is in the dev extra)", allow_module_level=True
        )


def run(model, x: np.ndarray, batch: int | None = None) -> np.ndarray:
    """onnxruntime's output for input ``x`` (``model``: a ModelProto or a file path), run in
    slices of ``batch`` rows (default: all at once)."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if isinstance(model, str | Path):
            path = Path(model)
        else:
            path = tmp / "model.onnx"
            path.write_bytes(model.SerializeToString())
        np.savez(tmp / "in.npz", x=x)
        step = str(batch or len(x))
        args = [sys.executable, "-c", _RUN, str(path), str(tmp / "in.npz"), str(tmp / "out.npy")]
        done = subprocess.run([*args, step], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        return np.load(tmp / "out.npy")
