"""``npu-dse calibrate``: technology fields fitted to measured latency, energy or power."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path

from tqdm import tqdm

from hw.bounds import InputError
from npu_dse.report import si
from npu_dse.rundir import read_json, versions, write_atomic
from npu_dse.tech_calibration import (
    COLUMNS,
    CSV_FIELDS,
    DEFAULT_STEPS,
    FITTABLE,
    MAX_STEPS,
    Calibration,
    calibrate,
    read_measurements,
)
from npu_dse.tech_fit import BOUND_FACTOR

_UNITS = {"latency_s": "s", "energy_j": "J", "power_w": "W"}

DESCRIPTION = (
    "Fit technology fields (shared by every row) to measured figures: each row of "
    f"MEASUREMENTS.csv has the columns {', '.join(COLUMNS)} (a workload file, a design file or "
    "preset name, latency_s, energy_j or power_w, and its value; relative paths from the CSV's "
    "folder). The fields are fitted in log space within start/"
    f"{BOUND_FACTOR:g}..start*{BOUND_FACTOR:g} by Adam through the smooth model, then finished "
    "on the exact model; every figure printed is the exact model's: the error of every row "
    "before and after, and leave-one-out (row i predicted by a fit to the others). --out DIR "
    "gets tech.json (a technology file for --tech), calibration.csv and calibration.json. "
    "Example: npu-dse calibrate meas.csv --fit dram_pj_per_bit,mac_pj --out runs/cal"
)


def add_calibrate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("measurements", metavar="MEASUREMENTS.csv", help="the measured figures")
    p.add_argument(
        "--fit",
        required=True,
        metavar="FIELD,...",
        help=f"technology fields to fit, comma-separated: {', '.join(FITTABLE)}",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the results")
    p.add_argument(
        "--steps",
        type=int,
        default=DEFAULT_STEPS,
        metavar="N",
        help=f"Adam steps of each fit (default {DEFAULT_STEPS})",
    )
    p.add_argument(
        "--seed",
        type=int,
        metavar="S",
        help="start from a random point within start/3..start*3 (default: the table's values)",
    )
    p.add_argument("--tech", metavar="FILE", help="starting technology file over every design")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")


def _csv(cal: Calibration) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(cal.rows)
    return buf.getvalue()


def write_calibration(cal: Calibration, out: Path) -> None:
    """``tech.json``, ``calibration.csv`` and ``calibration.json`` (with the seed and the
    package versions) under ``out``, each written atomically."""
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "tech.json", json.dumps(cal.tech_file, indent=2, allow_nan=False) + "\n")
    write_atomic(out / "calibration.csv", _csv(cal))
    record = cal.to_dict() | {"versions": versions()}
    write_atomic(out / "calibration.json", json.dumps(record, indent=2, allow_nan=False) + "\n")


def format_calibration(cal: Calibration) -> str:
    """The fitted fields and every row's error, as tables."""
    lines = [f"calibrate: {len(cal.rows)} rows of {cal.source}, {len(cal.fields)} fields"]
    lines.append(f"{'field':<24}{'start':>12}{'smooth':>12}{'fitted':>12}{'ratio':>8}")
    for f in cal.fields:
        s, m, v = cal.start[f], cal.smooth[f], cal.fitted[f]
        lines.append(f"{f:<24}{s:>12.5g}{m:>12.5g}{v:>12.5g}{v / s:>8.4f}")
    if cal.identified < len(cal.fields):
        lines.append(
            f"warning: the rows determine {cal.identified} of {len(cal.fields)} independent "
            "directions; some fields stay where they started"
        )
    lines.append("")
    lines.append(
        f"{'row':>4}  {'metric':<10}{'measured':>11}{'before':>10}{'after':>10}{'LOO':>10}  design"
    )
    for r in cal.rows:
        unit = _UNITS[r["metric"]]
        lines.append(
            f"{r['row']:>4}  {r['metric']:<10}{si(r['measured'], unit):>11}"
            f"{r['error_before']:>+10.2%}{r['error_after']:>+10.2%}{r['loo_error']:>+10.2%}"
            f"  {r['design']} / {r['workload']}"
        )
    e = cal.rms_log_error
    lines.append(
        f"rms log error: before {e['before']:.4f}, after {e['after']:.4g}, "
        f"leave-one-out {e['leave_one_out']:.4g}"
    )
    return "\n".join(lines)


def run_calibrate(args: argparse.Namespace) -> int:
    fields = tuple(f.strip() for f in args.fit.split(",") if f.strip())
    if not fields:
        raise InputError(f"--fit: give one or more fields; allowed: {', '.join(FITTABLE)}")
    if not 1 <= args.steps <= MAX_STEPS:
        raise InputError(f"--steps must be an integer from 1 to {MAX_STEPS}, got {args.steps}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {str(out)!r} exists and is not a folder")
    rows = read_measurements(args.measurements, args.tech)  # checks the --tech file too
    spec = None
    if args.tech is not None:
        spec = read_json(args.tech, "technology file")
        spec = {k: v for k, v in spec.items() if k not in ("format", "version")}
    bars = []  # opened at the first step: errors found before it stay one line

    def progress(done, total):
        if not bars:
            bars.append(tqdm(desc="calibrate", unit="step", file=sys.stderr, leave=False))
        bars[0].total = total
        bars[0].n = done
        bars[0].refresh()

    try:
        cal = calibrate(
            rows,
            fields,
            steps=args.steps,
            seed=args.seed,
            source=str(args.measurements),
            tech_spec=spec,
            progress=progress,
        )
    finally:
        for bar in bars:
            bar.close()
    write_calibration(cal, out)
    if args.json:
        print(json.dumps(cal.to_dict(), indent=2, allow_nan=False))
    else:
        print(format_calibration(cal))
        print(f"wrote {out / 'tech.json'}, calibration.csv and calibration.json")
    return 0
