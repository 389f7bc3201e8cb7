"""What every experiment script shares: arguments, the run folder, CSV, plots, trained models.

A script's ``main(argv)`` calls :func:`parse_args` (``--quick``, ``--out``, ``--seed``), opens a
:class:`Run` on the output folder (it writes ``run.json``: the command, the seed, the package
versions and, when closed, the wall time), writes tables with :meth:`Run.csv` (``csv.DictWriter``,
unit-suffixed snake_case headers) and figures with :meth:`Run.figure` (PNG and SVG), and
returns its headline figures as a dict (also written to ``headline.json``), which
``experiments/run_all.py`` collects into ``report.md``.

Trained models come from :func:`trained_model`: the small CNN or transformer trained once
(seeded, ``--quick`` or full config) into ``<out>/../models/<name>`` or a given cache folder,
and reused on later calls (``npu-dse train`` resumes a finished run instantly).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from matplotlib.figure import Figure

from npu_dse.rundir import versions, write_atomic

MODEL_CACHE_ENV = "NPU_DSE_MODEL_CACHE"
"""Environment variable naming a folder of trained models shared by all scripts."""


def parse_args(doc: str, argv=None, extra=None) -> argparse.Namespace:
    """``--quick``, ``--out DIR`` (required) and ``--seed S`` (default 0), plus ``extra(p)``."""
    parser = argparse.ArgumentParser(
        description=doc.strip().splitlines()[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--out", required=True, metavar="DIR", help="run folder")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="every random seed")
    if extra is not None:
        extra(parser)
    return parser.parse_args(argv)


class Run:
    """A run folder: ``run.json``, CSV tables, PNG+SVG figures and ``headline.json``."""

    def __init__(self, name: str, args: argparse.Namespace, argv=None):
        self.name, self.args = name, args
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.start = time.perf_counter()
        self.files: list[Path] = []
        argv = sys.argv[1:] if argv is None else list(argv)
        self.meta = {
            "experiment": name,
            "command": " ".join([f"python experiments/{name}.py", *argv]),
            "seed": args.seed,
            "quick": bool(args.quick),
            "versions": versions(),
        }
        self._write_json("run.json", self.meta)

    def _write_json(self, name: str, obj) -> Path:
        text = json.dumps(obj, indent=2, allow_nan=False, default=float) + "\n"
        return write_atomic(self.out / name, text)

    def csv(self, name: str, rows: Iterable[Mapping]) -> Path:
        """Write ``rows`` (dicts with the same keys) to ``<out>/<name>.csv``."""
        rows = list(rows)
        path = self.out / f"{name}.csv"
        fields = list(rows[0]) if rows else []
        for row in rows:
            fields += [k for k in row if k not in fields]
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
        write_atomic(path, text.getvalue())
        self.files.append(path)
        return path

    def figure(self, name: str, fig: Figure) -> list[Path]:
        """Save a figure as ``<name>.png`` and ``<name>.svg`` (deterministic SVG)."""
        paths = []
        for ext in ("png", "svg"):
            path = self.out / f"{name}.{ext}"
            meta = {"Date": None} if ext == "svg" else {}
            buf = io.BytesIO()
            fig.savefig(buf, format=ext, dpi=120, bbox_inches="tight", metadata=meta)
            paths.append(write_atomic(path, buf.getvalue()))
        self.files.extend(paths)
        return paths

    def finish(self, headline: dict) -> dict:
        """Write ``headline.json`` and the wall time into ``run.json``; return the headline."""
        self.meta["wall_s"] = round(time.perf_counter() - self.start, 2)
        self.meta["files"] = [p.name for p in self.files]
        self._write_json("run.json", self.meta)
        self._write_json("headline.json", headline)
        return headline


def new_figure(width: float = 6.4, height: float = 4.4) -> tuple[Figure, object]:
    """A pyplot-free figure and its single axes."""
    import matplotlib

    matplotlib.rcParams["svg.hashsalt"] = "npu-dse"
    fig = Figure(figsize=(width, height))
    return fig, fig.add_subplot(1, 1, 1)


def model_dir(kind: str, quick: bool, out: Path) -> Path:
    root = os.environ.get(MODEL_CACHE_ENV)
    base = Path(root) if root else Path(out).parent / "models"
    return base / f"{kind}{'-quick' if quick else ''}"


def trained_model(kind: str, quick: bool, out: Path, seed: int = 0, progress=None):
    """The small ``cnn`` or ``transformer``, trained (or resumed) into :func:`model_dir`.

    Returns ``(model, config, folder)``.
    """
    from models import configs, train

    make = configs.cnn_config if kind == "cnn" else configs.transformer_config
    cfg = make(quick=quick)
    if seed:
        import dataclasses

        cfg = dataclasses.replace(cfg, seed=seed)
    folder = model_dir(kind, quick, out)
    train.train_and_evaluate(cfg, folder, progress=progress)
    model, cfg = train.load_checkpoint(folder)
    return model, cfg, folder


def trained_workload(kind: str, quick: bool, out, seed: int):
    """The batch-1 workload of the trained ``cnn`` or ``transformer`` (trained if needed)."""
    from tqdm import tqdm

    from hw import graph
    from models import data

    bar = tqdm(desc=f"train {kind}", unit="epoch", file=sys.stderr, leave=False)
    with bar:
        model, cfg, _ = trained_model(
            kind, quick, out, seed, progress=lambda epoch, _m: bar.update(epoch - bar.n)
        )
    shape = data.load(cfg.model).x_test.shape[1:]
    return graph.workload(model.to_graph(), (1, *shape))
