"""Run every experiment and write ``report.md`` linking each figure and table.

Command: ``.venv/bin/python experiments/run_all.py --out runs/experiments [--quick]``
(``make experiments``). Each experiment writes into ``<out>/<name>/``; trained models are
shared in ``<out>/models/`` (or ``$NPU_DSE_MODEL_CACHE``). An experiment that fails is
reported in ``report.md`` with its error and the others still run; the exit code is then 1.
Run time on the 2-core CPU: about 10 minutes in full (training the models the first time
included), under 3 minutes with ``--quick``.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from pathlib import Path

from tqdm import tqdm

from experiments.common import MODEL_CACHE_ENV, parse_args, versions
from hw.x64 import x64

EXPERIMENTS = (
    ("exp_gpu_vs_npu", "GPU vs NPU on inference"),
    ("exp_precision", "Precision: accuracy against energy and latency"),
    ("exp_fusion_fallback", "Fusion and host fallback"),
    ("exp_array_scaling", "Array and buffer scaling, roofline"),
    ("exp_search_baselines", "Search against baselines"),
    ("exp_validation", "Validation against SCALE-Sim and datasheets"),
    ("exp_llm", "LLM inference: tokens/s and energy per token against the bandwidth bound"),
)


def _flatten(d, prefix=""):
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            yield from _flatten(v, key + ".")
        else:
            yield key, v


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list | tuple):
        return ", ".join(_fmt(x) for x in v)
    return str(v)


def section(name: str, title: str, folder: Path, headline: dict | None, error: str | None):
    lines = [f"## {title}", "", f"`experiments/{name}.py`, output in `{folder.name}/`.", ""]
    if error is not None:
        return lines + ["**Failed:**", "", "```", error.strip(), "```", ""]
    meta = json.loads((folder / "run.json").read_text())
    lines.append(f"Run time: {meta.get('wall_s', '?')} s. Command: `{meta['command']}`.")
    lines += ["", "| headline | value |", "|---|---|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in _flatten(headline or {})]
    lines.append("")
    for f in sorted(folder.glob("*.png")):
        lines += [f"![{f.stem}]({folder.name}/{f.name}) ([SVG]({folder.name}/{f.stem}.svg))", ""]
    tables = sorted(folder.glob("*.csv"))
    if tables:
        lines.append("Tables: " + ", ".join(f"[{t.name}]({folder.name}/{t.name})" for t in tables))
        lines.append("")
    return lines


@x64
def main(argv=None) -> int:
    args = parse_args(__doc__, argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault(MODEL_CACHE_ENV, str(out / "models"))
    start = time.perf_counter()
    lines = [
        "# npu-dse experiments",
        "",
        f"{'Quick' if args.quick else 'Full'} run, seed {args.seed}. Versions: "
        + ", ".join(f"{k} {v}" for k, v in versions().items()),
        "",
    ]
    failed = 0
    for name, title in tqdm(EXPERIMENTS, desc="experiments", file=sys.stderr):
        folder = out / name
        sub = ["--out", str(folder), "--seed", str(args.seed)] + (["--quick"] if args.quick else [])
        headline, error = None, None
        try:
            headline = importlib.import_module(f"experiments.{name}").main(sub)
        except Exception:  # one failing experiment must not lose the others' results
            error = traceback.format_exc(limit=3)
            failed += 1
        lines += section(name, title, folder, headline, error)
        (out / "report.md").write_text("\n".join(lines) + "\n")
    lines.append(f"Total run time: {time.perf_counter() - start:.0f} s.")
    (out / "report.md").write_text("\n".join(lines) + "\n")
    print(f"report: {out / 'report.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
