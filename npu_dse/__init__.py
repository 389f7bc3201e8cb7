"""npu-dse, the application: file formats, use cases, reports and the ``npu-dse`` command line.

The libraries (``hw``, ``models``, ``dse``) compute; this package reads what users bring
(workload, design and space files), runs the use cases and writes what they get back. Each
use case takes typed inputs and returns a dataclass; the CLI (``npu_dse.cli``) only parses,
calls one and prints.

>>> from npu_dse import bundled, load_workload, resolve_design, simulate
>>> wl, _ = load_workload(bundled("resnet18.csv"))
>>> sim = simulate(wl, resolve_design(preset="edge-tpu-like"))
>>> sim.to_dict()["total"]["macs"]
1471181568

* :mod:`npu_dse.workloads`: SCALE-Sim topology CSVs and the JSON workload format;
* :mod:`npu_dse.designs`: design files (every hardware field, the technology, per-layer
  widths and mappings), written and read back exactly;
* :mod:`npu_dse.simulate`, :mod:`npu_dse.evaluate`, :mod:`npu_dse.search`,
  :mod:`npu_dse.train`: the use cases;
* :mod:`npu_dse.calibration`: accuracy by execution, and the proxy's calibration;
* :mod:`npu_dse.tech_calibration`: technology fields fitted to measured figures
  (``npu-dse calibrate``; the fit itself in :mod:`npu_dse.tech_fit`);
* :mod:`npu_dse.report`, :mod:`npu_dse.plots`, :mod:`npu_dse.rundir`: JSON, tables, plots
  and run folders.
"""

from hw import lazy as _lazy

_EXPORTS = {
    "DesignFile": "npu_dse.designs",
    "Evaluation": "npu_dse.evaluate",
    "SearchOutcome": "npu_dse.search",
    "Simulation": "npu_dse.simulate",
    "bundled": "npu_dse.workloads",
    "bundled_space": "npu_dse.workloads",
    "config_to_dict": "npu_dse.designs",
    "design_file": "npu_dse.search",
    "design_from_dict": "npu_dse.designs",
    "design_to_dict": "npu_dse.designs",
    "evaluate": "npu_dse.evaluate",
    "load_design": "npu_dse.designs",
    "load_model_widths": "npu_dse.workloads",
    "load_suite": "npu_dse.suites",
    "load_workload": "npu_dse.workloads",
    "problem_from_files": "npu_dse.search",
    "resolve_design": "npu_dse.simulate",
    "search": "npu_dse.search",
    "simulate": "npu_dse.simulate",
    "split_sram": "npu_dse.designs",
    "suite_problem": "npu_dse.suites",
    "train": "npu_dse.train",
    "train_config": "npu_dse.train",
    "write_run": "npu_dse.search",
}
"""Exported name -> the module that defines it, imported on first use (``hw.lazy``): the
command line starts without JAX where a command needs none."""

__all__ = list(_EXPORTS)
_lazy.install(__name__, _EXPORTS)
