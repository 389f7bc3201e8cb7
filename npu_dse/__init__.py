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
* :mod:`npu_dse.report`, :mod:`npu_dse.plots`, :mod:`npu_dse.rundir`: JSON, tables, plots
  and run folders.
"""

from npu_dse.designs import (
    DesignFile,
    config_to_dict,
    design_from_dict,
    design_to_dict,
    load_design,
    split_sram,
)
from npu_dse.evaluate import Evaluation, evaluate
from npu_dse.search import SearchOutcome, design_file, problem_from_files, search, write_run
from npu_dse.simulate import Simulation, resolve_design, simulate
from npu_dse.train import train, train_config
from npu_dse.workloads import bundled, bundled_space, load_workload

__all__ = [
    "DesignFile",
    "Evaluation",
    "SearchOutcome",
    "Simulation",
    "bundled",
    "bundled_space",
    "config_to_dict",
    "design_file",
    "design_from_dict",
    "design_to_dict",
    "evaluate",
    "load_design",
    "load_workload",
    "problem_from_files",
    "resolve_design",
    "search",
    "simulate",
    "split_sram",
    "train",
    "train_config",
    "write_run",
]
