"""SCALE-Sim 3.0.0 reference rows (``shared/reference/scalesim_v3_public.csv``).

The file sits outside the repository, in ``../shared/reference/`` next to the checkout; the
environment variable ``NPU_DSE_REFERENCE`` points elsewhere. Each row becomes a design, a
one-layer workload and the simulator's figures, so tests and benchmarks can replay it.
"""

from __future__ import annotations

import csv
import dataclasses
import os
from pathlib import Path

import numpy as np

from hw import layers, presets
from hw.types import DATAFLOWS, canonical

REFERENCE_ENV = "NPU_DSE_REFERENCE"
_DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "reference" / "scalesim_v3_public.csv"


def reference_path() -> Path:
    """Where the reference CSV is expected (it may not exist)."""
    return Path(os.environ.get(REFERENCE_ENV, _DEFAULT))


@dataclasses.dataclass(frozen=True)
class ReferenceRow:
    """One SCALE-Sim run: the layer, the array, the memory setting and its figures."""

    setting: str
    layer: layers.Layer
    rows: int
    cols: int
    dataflow: str
    sram_kib: tuple[int, int, int]  # ifmap, filter, ofmap
    bw_words: float | None  # words per cycle per DRAM stream; None in CALC mode
    sim: dict  # the simulator's figures, numbers only

    @property
    def sim_cycles(self) -> int:
        """SCALE-Sim's cycle count (its ``total_cycles`` is the index of the last cycle)."""
        return int(self.sim["sim_total_cycles"]) + 1

    @property
    def stalls(self) -> bool:
        return self.sim["sim_stall_cycles"] > 0


def _layer(row: dict) -> layers.Layer:
    name = row["layer_name"]
    if row["layer_kind"] == "conv":
        return layers.conv2d(
            name,
            ifmap_h=int(row["ifmap_h"]),
            ifmap_w=int(row["ifmap_w"]),
            channels=int(row["channels_c"]),
            num_filters=int(row["num_filters_k"]),
            filter_h=int(row["filter_r"]),
            filter_w=int(row["filter_s"]),
            stride=int(row["stride"]),
            rounding="ceil",
        )
    return layers.gemm(name, m=int(row["gemm_M"]), k=int(row["gemm_K"]), n=int(row["gemm_N"]))


def load_reference(path: Path | None = None) -> list[ReferenceRow]:
    """Parse the reference CSV; raises ``FileNotFoundError`` if it is absent."""
    path = Path(path) if path is not None else reference_path()
    out = []
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            user = row["interface_bw_mode"] == "USER"
            sim = {k: float(v) for k, v in row.items() if k.startswith("sim_")}
            out.append(
                ReferenceRow(
                    setting=row["setting"],
                    layer=_layer(row),
                    rows=int(row["array_rows"]),
                    cols=int(row["array_cols"]),
                    dataflow=row["dataflow"],
                    sram_kib=tuple(int(row[f"sram_{x}_kB"]) for x in ("ifmap", "filter", "ofmap")),
                    bw_words=float(row["dram_bw_ifmap_rd_words_per_cycle"]) if user else None,
                    sim=sim,
                )
            )
    return out


def gemm_shapes(rows: list[ReferenceRow]) -> dict[str, np.ndarray]:
    """GEMM and array shapes of the rows as int64 arrays (for vectorised replay)."""
    return {
        "m": np.array([r.layer.gemm_m for r in rows], dtype=np.int64),
        "k": np.array([r.layer.gemm_k for r in rows], dtype=np.int64),
        "n": np.array([r.layer.gemm_n for r in rows], dtype=np.int64),
        "rows": np.array([r.rows for r in rows], dtype=np.int64),
        "cols": np.array([r.cols for r in rows], dtype=np.int64),
        "dataflow": np.array([DATAFLOWS.index(r.dataflow) for r in rows], dtype=np.int64),
    }


def design_for(row: ReferenceRow, memory_model: str = "scalesim"):
    """The design that mirrors a reference row: its array, SRAMs and per-stream bandwidth.

    SCALE-Sim counts words; with 8-bit operands a word is a byte, so at 1 GHz its ``bw`` words
    per cycle are ``bw`` GB/s. CALC rows (no bandwidth limit) get 1e6 GB/s.
    """
    base = presets.get_preset("scalesim-32x32")
    return canonical(
        dataclasses.replace(
            base,
            rows=row.rows,
            cols=row.cols,
            dataflow=DATAFLOWS.index(row.dataflow),
            ifmap_sram_kib=float(row.sram_kib[0]),
            filter_sram_kib=float(row.sram_kib[1]),
            ofmap_sram_kib=float(row.sram_kib[2]),
            clock_mhz=1000.0,
            dram_bw_gbps=row.bw_words if row.bw_words is not None else 1e6,
            w_bits=8.0,
            a_bits=8.0,
            acc_bits=8.0,
            dram_per_stream=True,
            memory_model=memory_model,
            grouped_lowering="gemm",  # SCALE-Sim runs a conv's groups as one GEMM each
        )
    )


def gemm_workload(row: ReferenceRow):
    """The row's layer as SCALE-Sim's USER mode sees it: a GEMM whose ifmap is the im2col
    matrix (``M x K`` words fetched from DRAM, not the smaller distinct ifmap)."""
    lay = row.layer
    return layers.workload([layers.gemm(lay.name, m=lay.gemm_m, k=lay.gemm_k, n=lay.gemm_n)])
