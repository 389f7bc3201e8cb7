"""The LLM-inference use case: prefill or decode of a zoo decoder on one design, exactly.

Operand classes have their own widths: weights (``w_bits``, the dense layers' right operand),
activations (``a_bits``) and the KV cache (``kv_bits``: the right operand of the attention
matmuls, and the width ``kv_store`` writes). The multipliers are sized for the widest right
operand, ``max(w_bits, kv_bits)``.

Residency. Decode runs token after token; data that stays in SRAM between tokens is not
re-read. The weights are resident when they fit in half of the SRAM that holds them (the
filter buffer, or the unified buffer; the other half stays for the double-buffered tiles in
flight), and the KV cache when it fits in what the resident weights leave of that half.
Resident operands are modelled as zero distinct DRAM elements (their SRAM reads remain);
everything else streams from DRAM every token, as ``hw.memory`` fetches it.

Figures (``batch`` sequences; the step is one prefill or one decode step):

    time_to_first_token_s   = prefill step latency
    time_per_output_token_s = decode step latency,  tokens_per_s = batch / step latency
    energy_per_token_j      = step energy / tokens produced (decode: batch; prefill: prompt
                              tokens of all sequences)
    dram_bound_tokens_per_s = DRAM bandwidth / DRAM bytes per token

Mapping. Each layer's tiles and loop order are ``hw.cost.default_mapping``'s, or those a
design file gives its layers (a searched design's ``best.json``; widths it gives must be the
operand classes').

Capacity. The weights (every parameter at ``w_bits``) and the KV cache after the step (at
``kv_bits``) must fit in the design's device DRAM (``NPUConfig.dram_capacity_gib``);
``fits_in_dram`` says whether they do. A model that does not fit is a one-line
``ValueError``, unless ``require_fit=False`` asks for the figures anyway (nothing is spilled
over the host link: they are the figures of a device that had the room).

>>> from npu_dse import resolve_design
>>> run = simulate_llm("gpt2", resolve_design(preset="edge-tpu-like"), phase="decode",
...                    context=127)
>>> d = run.to_dict()
>>> d["tokens_per_s"] <= d["dram_bound_tokens_per_s"], d["limited_by"]
(True, 'dram')
"""

from __future__ import annotations

import dataclasses

import numpy as np

from hw import checks, cost, formats, layers
from hw.formats import NumberFormat
from hw.types import CostReport, LayerBits, NPUConfig, Workload
from hw.validate import validate_config
from hw.x64 import x64
from models import decoder
from npu_dse import designs, report
from npu_dse.designs import DesignFile
from npu_dse.inputs import boundary

PHASES = ("prefill", "decode")

_CLASSES = ("w", "a", "kv")


@dataclasses.dataclass(frozen=True)
class LLMRequest:
    """What to run: a zoo model, a phase and its sizes, the operand widths."""

    model: str
    phase: str = "decode"
    prompt: int = 128  # prefill: prompt tokens per sequence
    context: int = 128  # decode: tokens already in the KV cache
    batch: int = 1  # sequences
    w_bits: int | None = None  # None: the design's
    a_bits: int | None = None  # None: the design's
    kv_bits: int | None = None  # None: a_bits
    # Number formats (hw.formats: fp16, bf16, fp8, int<b>); None: integers at the bits above.
    # A format sets its operand's width.
    w_format: str | None = None
    a_format: str | None = None
    kv_format: str | None = None


@dataclasses.dataclass(frozen=True)
class LLMSimulation:
    """The result of :func:`simulate_llm`: what was run, its widths and its exact report."""

    request: LLMRequest
    config: NPUConfig
    workload: Workload
    bits: LayerBits
    report: CostReport
    formats: tuple[NumberFormat, NumberFormat, NumberFormat]  # weights, activations, KV
    resident_weights: bool
    resident_kv: bool
    weights_bytes: float  # every parameter at w_bits
    kv_cache_bytes: float  # the cache after this step, at kv_bits
    fits_in_dram: bool  # weights_bytes + kv_cache_bytes <= the design's DRAM capacity

    @property
    def tokens(self) -> int:
        """Tokens the step processes: the prompts (prefill) or one per sequence (decode)."""
        r = self.request
        return r.batch * (r.prompt if r.phase == "prefill" else 1)

    def dram_split(self) -> dict:
        """DRAM bytes of the step by operand class: weights, KV cache, activations."""
        rep, kinds = self.report, np.array(self.workload.kinds)
        filt = np.asarray(rep.dram_filter_read_bytes)
        weights = float(filt[kinds == "dense"].sum())
        kv = float(filt[kinds == "matmul"].sum())
        kv += float(np.asarray(rep.dram_ofmap_write_bytes)[kinds == "kv_store"].sum())
        total = float(
            np.sum(
                filt
                + np.asarray(rep.dram_ifmap_read_bytes)
                + np.asarray(rep.dram_ofmap_write_bytes)
                + np.asarray(rep.dram_ofmap_read_bytes)
            )
        )
        return {
            "weights_bytes": weights,
            "kv_cache_bytes": kv,
            "activations_bytes": total - weights - kv,
            "total_bytes": total,
        }

    def dram_bound_tokens_per_s(self) -> float:
        """``DRAM bandwidth / DRAM bytes per token``: no step can beat it. With a bandwidth
        per stream (``dram_per_stream``) the bytes are those of the busiest stream."""
        rep = self.report
        moved = self.dram_split()["total_bytes"]
        if self.config.dram_per_stream:
            out = np.asarray(rep.dram_ofmap_write_bytes) + np.asarray(rep.dram_ofmap_read_bytes)
            streams = (rep.dram_ifmap_read_bytes, rep.dram_filter_read_bytes, out)
            moved = max(float(np.sum(x)) for x in streams)
        return float(self.config.dram_bw_gbps) * 1e9 * self.tokens / moved

    def time_split_s(self) -> dict:
        """The step's latency in three parts, s: ``dram`` (layers' DRAM transfer time),
        ``compute`` (what layers whose array or vector work outlasts their transfers add:
        fill-bound GEMMs), ``exposed`` (first tiles in and last tile out of each layer, not
        overlapped)."""
        rep = self.report
        busy = sum(np.asarray(x) for x in (rep.compute_cycles, rep.vector_cycles, rep.host_cycles))
        dram, total = np.asarray(rep.dram_cycles), np.asarray(rep.total_cycles)
        hz = float(self.config.clock_mhz) * 1e6
        return {
            "dram": float(dram.sum()) / hz,
            "compute": float(np.maximum(busy - dram, 0).sum()) / hz,
            "exposed": float((total - np.maximum(busy, dram)).sum()) / hz,
        }

    def limited_by(self) -> str:
        """``dram`` when the DRAM transfer time is at least 90 % of the step, else the larger
        of ``compute`` (fill-bound) and ``exposed`` (tile prologues and epilogues)."""
        split = self.time_split_s()
        if split["dram"] >= 0.9 * sum(split.values()):
            return "dram"
        return "compute" if split["compute"] >= split["exposed"] else "exposed"

    @x64
    def to_dict(self) -> dict:
        """The CLI's ``--json`` object (Python numbers only)."""
        r, rep = self.request, self.report
        latency, energy = float(rep.total_latency_s), float(rep.total_energy_j)
        split = self.dram_split()
        out = {
            "model": decoder.get_decoder(r.model).name,
            "phase": r.phase,
            "batch": r.batch,
            ("prompt" if r.phase == "prefill" else "context"): (
                r.prompt if r.phase == "prefill" else r.context
            ),
            **{f"{k}_bits": float(f.bits) for k, f in zip(_CLASSES, self.formats, strict=True)},
            "formats": {k: f.name for k, f in zip(_CLASSES, self.formats, strict=True)},
            "latency_s": latency,
            "energy_j": energy,
            "power_w": energy / latency,
            "area_mm2": float(rep.area_mm2),
            "energy_per_token_j": energy / self.tokens,
            "tokens_per_s": self.tokens / latency,
            "dram": split,
            "dram_bytes_per_token": split["total_bytes"] / self.tokens,
            "dram_bound_tokens_per_s": self.dram_bound_tokens_per_s(),
            "time_split_s": self.time_split_s(),
            "limited_by": self.limited_by(),
            "macs": int(np.sum(rep.macs)),
            "resident": {"weights": self.resident_weights, "kv_cache": self.resident_kv},
            "fits_in_dram": self.fits_in_dram,
            "memory": {
                "weights_bytes": self.weights_bytes,
                "kv_cache_bytes": self.kv_cache_bytes,
                "total_bytes": self.weights_bytes + self.kv_cache_bytes,
                "capacity_bytes": capacity_bytes(self.config),
                "dram_capacity_gib": float(self.config.dram_capacity_gib),
            },
            "design": report.design_dict(self.config, self.config.name),
        }
        if r.phase == "prefill":
            out["time_to_first_token_s"] = latency
        else:
            out["time_per_output_token_s"] = latency
        return out


def operand_bits(workload: Workload, w_bits, a_bits, kv_bits) -> LayerBits:
    """Per-layer widths: the attention matmuls' right operand (keys, values) and the
    ``kv_store`` writes at ``kv_bits``, dense weights at ``w_bits``, activations at
    ``a_bits``."""
    kinds = np.array(workload.kinds)
    w = np.where(kinds == "matmul", kv_bits, w_bits).astype(np.float64)
    a = np.where(kinds == "kv_store", kv_bits, a_bits).astype(np.float64)
    return LayerBits(w_bits=w, a_bits=a)


def resident_bytes(config: NPUConfig) -> float:
    """SRAM bytes that may hold data across tokens: half of the filter buffer, or of the
    unified buffer."""
    kib = config.filter_sram_kib
    if config.unified_sram:
        kib = config.ifmap_sram_kib + config.filter_sram_kib + config.ofmap_sram_kib
    return 0.5 * 1024.0 * float(kib)


def with_residency(workload: Workload, bits: LayerBits, room_bytes: float):
    """``(workload, resident_weights, resident_kv)``: the dense layers' weights, then the
    matmuls' keys and values, made resident (no distinct DRAM elements, no cache write to
    DRAM) where they fit in ``room_bytes``."""
    kinds = np.array(workload.kinds)
    filt = np.asarray(workload.filter_elems) * np.asarray(bits.w_bits) / 8.0
    w_bytes, kv_bytes = filt[kinds == "dense"].sum(), filt[kinds == "matmul"].sum()
    res_w = bool(w_bytes <= room_bytes)
    res_kv = bool(kv_bytes <= room_bytes - (w_bytes if res_w else 0.0))
    filter_elems = np.asarray(workload.filter_elems).copy()
    ofmap_elems = np.asarray(workload.ofmap_elems).copy()
    if res_w:
        filter_elems[kinds == "dense"] = 0
    if res_kv:
        filter_elems[kinds == "matmul"] = 0
        ofmap_elems[kinds == "kv_store"] = 0
    changed = dataclasses.replace(workload, filter_elems=filter_elems, ofmap_elems=ofmap_elems)
    return changed, res_w, res_kv


def check_request(r: LLMRequest) -> None:
    if r.phase not in PHASES:
        raise ValueError(f"phase must be one of {', '.join(PHASES)}, got {r.phase!r}")
    for name in ("w_bits", "a_bits", "kv_bits"):
        value = getattr(r, name)
        if value is not None and not 2 <= value <= 16:
            raise ValueError(f"{name} must be between 2 and 16 bits, got {value!r}")


def operand_formats(r: LLMRequest, config: NPUConfig) -> tuple:
    """``(weights, activations, KV cache)`` formats: the request's, else integers at its
    widths, else at the design's; the KV cache defaults to the activations' format."""

    def pick(cls: str, fmt: str | None, bits) -> NumberFormat:
        if fmt is None:
            return formats.parse(f"int{int(bits)}")
        found = formats.parse(fmt)
        given = getattr(r, f"{cls}_bits")
        if given is not None and given != found.bits:
            raise ValueError(f"{cls}_bits {given} contradicts {cls}_format {fmt} ({found.bits})")
        return found

    w = pick("w", r.w_format, r.w_bits if r.w_bits is not None else config.w_bits)
    a = pick("a", r.a_format, r.a_bits if r.a_bits is not None else config.a_bits)
    if r.kv_format is None and r.kv_bits is None:
        return w, a, a
    return w, a, pick("kv", r.kv_format, r.kv_bits)


def capacity_bytes(config: NPUConfig) -> float:
    """The design's device DRAM, bytes: ``dram_capacity_gib * 2^30``."""
    return float(config.dram_capacity_gib) * 2.0**30


def footprint_bytes(r: LLMRequest, cfg: decoder.DecoderConfig, w_bits, kv_bits) -> tuple:
    """``(weights, KV cache)`` bytes in DRAM after the step: every parameter at ``w_bits``,
    the cache of ``batch`` sequences holding the prompt (prefill) or ``context + 1`` tokens
    (decode, at most the sliding window) at ``kv_bits``."""
    weights = decoder.param_count(cfg) * w_bits / 8.0
    held = r.prompt if r.phase == "prefill" else r.context + 1
    return weights, decoder.kv_cache_elems(cfg, held, r.batch) * kv_bits / 8.0


def fit_error(name: str, config: NPUConfig, weights, kv, w_bits, kv_bits) -> str | None:
    """One line when ``weights + kv`` bytes exceed the design's DRAM, else ``None``."""
    if weights + kv <= capacity_bytes(config):
        return None
    return (
        f"{name} does not fit the device DRAM: weights {weights / 2**30:.3g} GiB at "
        f"{w_bits:g} bits + KV cache {kv / 2**30:.3g} GiB at {kv_bits:g} bits > "
        f"dram_capacity_gib {float(config.dram_capacity_gib):g}; use fewer bits, a smaller "
        "batch or context, or more DRAM (--dram-capacity-gib)"
    )


def llm_workload(request: LLMRequest) -> Workload:
    """The request's phase of its zoo model as a workload (before residency)."""
    cfg = decoder.get_decoder(request.model)
    if request.phase == "prefill":
        return layers.workload(decoder.prefill(cfg, request.prompt, request.batch))
    return layers.workload(decoder.decode(cfg, request.context, request.batch))


def _mapping(design, config: NPUConfig, workload: Workload, bits: LayerBits):
    """The default mapping, with the tiles and loop orders a design file gives its layers (a
    searched design's); widths it gives must be the operand classes' (``operand_bits``)."""
    mapping = cost.default_mapping(config, workload, bits)
    if not isinstance(design, DesignFile) or not design.layers:
        return mapping
    mapping, widths = designs.per_layer(design, workload, mapping)
    if widths is not None:
        pairs = zip(("w_bits", "a_bits"), widths, (bits.w_bits, bits.a_bits), strict=True)
        for name, given, used in pairs:
            bad = np.flatnonzero(np.asarray(given) != np.asarray(used))
            if bad.size:
                i = int(bad[0])
                raise ValueError(
                    f"design: layer {workload.names[i]!r} has {name} {given[i]:g}, but the "
                    f"step runs it at {used[i]:g} (weights, activations and KV cache widths "
                    "set every layer's); give matching --w-bits/--a-bits/--kv-bits"
                )
    return mapping


@boundary
@x64
def simulate_llm(
    model: str | LLMRequest,
    design: DesignFile | NPUConfig,
    *,
    require_fit: bool = True,
    **request,
) -> LLMSimulation:
    """Run one prefill or decode step of a zoo decoder on ``design`` (see the module docs).

    ``model`` is a zoo name (with the :class:`LLMRequest` fields as keywords) or a request.
    Raises ``ValueError`` (one line) for a bad request, a model whose weights and KV cache
    exceed the design's DRAM (unless ``require_fit`` is false: the result then says
    ``fits_in_dram`` false), or a layer whose tiles do not fit the buffers.
    """
    r = model if isinstance(model, LLMRequest) else LLMRequest(model, **request)
    check_request(r)
    cfg = decoder.get_decoder(r.model)
    config = design.config if isinstance(design, DesignFile) else design
    fmts = operand_formats(r, config)
    w, a, kv = (float(f.bits) for f in fmts)
    config = validate_config(
        dataclasses.replace(config, w_bits=np.float64(max(w, kv)), a_bits=np.float64(a))
    )
    weights_bytes, kv_bytes = footprint_bytes(r, cfg, w, kv)
    too_big = fit_error(cfg.name, config, weights_bytes, kv_bytes, w, kv)
    if too_big is not None and require_fit:
        raise ValueError(too_big)
    workload = llm_workload(r)
    bits = operand_bits(workload, w, a, kv)
    room = resident_bytes(config) if r.phase == "decode" else 0.0
    workload, res_w, res_kv = with_residency(workload, bits, room)
    mapping = _mapping(design, config, workload, bits)
    rep = cost.evaluate(config, workload, mapping, layer_bits=bits)
    error = checks.fit_error(config, workload, rep.fits)
    if error is not None:
        raise ValueError(error)
    if any(f.is_float for f in fmts):
        pairs = [(fmts[2] if k == "matmul" else fmts[0], fmts[1]) for k in workload.kinds]
        rep = formats.reprice(rep, config, pairs)
    return LLMSimulation(
        r,
        config,
        workload,
        bits,
        rep,
        fmts,
        res_w,
        res_kv,
        weights_bytes,
        kv_bytes,
        too_big is None,
    )
