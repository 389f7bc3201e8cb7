"""Design-space files, whose ``base`` may be a preset or a design file.

``dse.Space.from_dict`` reads the space itself (see ``dse.space``); here a ``base`` that is
not a preset name is read as a design file's path (relative to the space file's folder when
not absolute), so a search can start from a design found earlier or written by hand.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from dse import Space
from hw import presets
from npu_dse.designs import load_design
from npu_dse.inputs import boundary
from npu_dse.rundir import read_json
from npu_dse.techfiles import load_tech


@boundary
def load_space(path: str | Path) -> Space:
    """Read a space file; errors name the file and what is wrong."""
    path = Path(path)
    spec = read_json(path, "design space file")
    base = spec.get("base") if isinstance(spec, dict) else None
    design = None
    if isinstance(base, str) and base not in presets.preset_names():
        file = Path(base) if Path(base).is_absolute() else path.parent / base
        if not file.is_file():
            known = ", ".join(presets.preset_names())
            raise ValueError(
                f"{path.name}: base {base!r} is neither a preset ({known}) nor a design file"
            )
        design = load_design(file).config
    try:
        return Space.from_dict(spec, base_design=design)
    except ValueError as err:
        raise ValueError(f"{path.name}: {err}") from None


def with_tech(space: Space, tech: str | Path | None) -> Space:
    """``space`` whose base design takes the technology file ``tech`` (None: unchanged)."""
    if tech is None:
        return space
    base = space.base_config()
    base = dataclasses.replace(base, tech=load_tech(tech, base.tech))
    return dataclasses.replace(space, base_design=base)


def with_model_widths(space: Space, names, widths: dict[str, tuple[int, int]]) -> Space:
    """``space`` with the layers named in ``widths`` (``{name: (w_bits, a_bits)}``, a quantized
    ONNX model's, ``workloads.load_model_widths``) fixed at them: the search keeps them."""
    if not widths:
        return space
    index = {name: i for i, name in enumerate(names)}
    fixed = tuple((index[n], float(w), float(a)) for n, (w, a) in widths.items())
    return dataclasses.replace(space, fixed_bits=tuple(sorted(space.fixed_bits + fixed)))
