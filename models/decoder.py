"""Decoder-only language models as layers: prefill of a prompt and decode of one token.

A :class:`DecoderConfig` holds a published configuration; :func:`prefill` and :func:`decode`
lower it to :class:`hw.layers.Layer` lists in the order ``hw.schedule`` fuses them. One block:

    norm1, q (+ rope), k (+ rope), kv_store, v, kv_store, qk, softmax, av, o, add,
    norm2, MLP (gelu: fc1, gelu, fc2; swiglu: gate, up, swiglu, down), add

then the final norm and the LM head on the last position of each sequence. Biases fuse into
the GEMM before them. Grouped-query attention with ``g = heads / kv_heads`` query heads per
KV head runs, per sequence and KV head, ``Q K^T`` as an ``(g T) x head_dim x S`` matmul and
``A V`` as ``(g T) x S x head_dim``; the keys and values are the matmuls' right (filter)
operands, so their distinct elements are the KV cache read. ``T`` is the tokens of the phase
(the prompt for prefill, 1 for decode) and ``S`` the keys attended: the prompt for prefill
(the full causal square is computed and masked in the softmax, as a GEMM engine runs it), the
``context`` cached tokens plus the new one for decode, at most the sliding window.

``kv_store`` layers quantize the new keys and values to the cache's width and write them:
``T`` entries per sequence and layer in prefill, one in decode.

Decode MACs per token (batch 1) are the weight-matrix parameters (the embedding counted only
when it is also the LM head) plus ``2 * layers * heads * head_dim * S`` for attention:

>>> cfg = ZOO["gpt2"]
>>> macs = sum(lay.macs for lay in decode(cfg, context=99))
>>> macs == weight_macs(cfg) + 2 * 12 * 12 * 64 * 100
True
"""

from __future__ import annotations

import dataclasses

from hw import layers
from hw.layers import Layer


@dataclasses.dataclass(frozen=True)
class DecoderConfig:
    """A decoder-only transformer, as its ``config.json`` or paper gives it."""

    name: str
    n_layers: int  # transformer blocks
    d_model: int  # residual width (hidden_size, n_embd)
    heads: int  # query heads
    kv_heads: int  # key/value heads: = heads (MHA), 1 < kv < heads (GQA), 1 (MQA)
    head_dim: int  # width of one head
    d_ff: int  # MLP hidden width (intermediate_size)
    vocab: int  # vocabulary size
    norm: str  # "layernorm" (weight and bias) or "rmsnorm" (weight only)
    mlp: str  # "gelu" (fc1, fc2) or "swiglu" (gate, up, down)
    positions: int = 0  # learned position embeddings (GPT-2); 0: rotary embeddings
    bias: bool = False  # biases in the attention and MLP projections
    tied: bool = False  # the LM head is the input embedding matrix
    window: int = 0  # sliding-window attention span (Mistral); 0: the whole context
    max_context: int = 0  # the longest sequence the model was trained for
    params_published: float = 0.0  # parameter count as published
    source: str = ""  # where the numbers come from


ZOO: dict[str, DecoderConfig] = {
    "gpt2": DecoderConfig(
        "gpt2", 12, 768, 12, 12, 64, 3072, 50257, "layernorm", "gelu", positions=1024,
        bias=True, tied=True, max_context=1024, params_published=124e6,
        source="Radford et al. 2019 (GPT-2 small); openai-community/gpt2 config.json: n_layer "
        "12, n_embd 768, n_head 12, vocab 50257, n_positions 1024; model card: 124M parameters",
    ),
    "llama_3_2_1b": DecoderConfig(
        "llama_3_2_1b", 16, 2048, 32, 8, 64, 8192, 128256, "rmsnorm", "swiglu", tied=True,
        max_context=131072, params_published=1.23e9,
        source="meta-llama/Llama-3.2-1B config.json: hidden 2048, intermediate 8192, 16 layers, "
        "32 heads, 8 KV heads, head_dim 64, vocab 128256, tie_word_embeddings; model card: 1.23B",
    ),
    "llama_2_7b": DecoderConfig(
        "llama_2_7b", 32, 4096, 32, 32, 128, 11008, 32000, "rmsnorm", "swiglu",
        max_context=4096, params_published=6.7e9,
        source="Touvron et al. 2023 (Llama 2); meta-llama/Llama-2-7b-hf config.json: hidden 4096, "
        "intermediate 11008, 32 layers, 32 heads, vocab 32000; 6.7B as LLaMA-7B (same shape)",
    ),
    "mistral_7b": DecoderConfig(
        "mistral_7b", 32, 4096, 32, 8, 128, 14336, 32000, "rmsnorm", "swiglu", window=4096,
        max_context=32768, params_published=7.3e9,
        source="Jiang et al. 2023 (Mistral 7B, Table 1: dim 4096, 32 layers, head_dim 128, "
        "hidden 14336, 32 heads, 8 KV heads, window 4096, vocab 32000); 7.3B parameters",
    ),
}  # fmt: skip
"""Decoder name -> published configuration (hyphens are accepted: ``llama-3-2-1b``)."""


def get_decoder(name: str) -> DecoderConfig:
    """The zoo's configuration of ``name`` (``-`` and ``_`` are the same)."""
    key = name.strip().lower().replace("-", "_").replace(".", "_")
    if key not in ZOO:
        raise ValueError(f"unknown decoder model {name!r}; known: {', '.join(ZOO)}")
    return ZOO[key]


def _norm_params(cfg: DecoderConfig) -> int:
    return (2 if cfg.norm == "layernorm" else 1) * cfg.d_model


def weight_macs(cfg: DecoderConfig) -> int:
    """Weight-matrix parameters used once per token: the projections, the MLP and the LM
    head (the input embedding is a lookup, not MACs)."""
    d, q, kv = cfg.d_model, cfg.heads * cfg.head_dim, cfg.kv_heads * cfg.head_dim
    attn = d * q + 2 * d * kv + q * d
    mlp = (3 if cfg.mlp == "swiglu" else 2) * d * cfg.d_ff
    return cfg.n_layers * (attn + mlp) + cfg.vocab * d


def param_count(cfg: DecoderConfig) -> int:
    """Every parameter: embeddings, projections, MLP, biases, norms and an untied LM head."""
    d, q, kv = cfg.d_model, cfg.heads * cfg.head_dim, cfg.kv_heads * cfg.head_dim
    biases = (q + 2 * kv + d + cfg.d_ff + d) if cfg.bias else 0
    per_block = 2 * _norm_params(cfg) + biases
    head = 0 if cfg.tied else cfg.vocab * d
    embeddings = cfg.vocab * d + cfg.positions * d
    return (
        weight_macs(cfg)
        - cfg.vocab * d
        + cfg.n_layers * per_block
        + embeddings
        + head
        + (_norm_params(cfg))
    )


def kv_cache_elems(cfg: DecoderConfig, tokens: int, batch: int = 1) -> int:
    """Elements of the KV cache holding ``tokens`` positions of ``batch`` sequences
    (at most the sliding window)."""
    held = min(tokens, cfg.window) if cfg.window else tokens
    return 2 * cfg.n_layers * cfg.kv_heads * cfg.head_dim * held * batch


def _block(cfg: DecoderConfig, i: int, tokens: int, span: int, batch: int) -> list[Layer]:
    """One block on ``tokens`` new tokens per sequence attending to ``span`` keys."""
    p, rows, d = f"block{i}", batch * tokens, cfg.d_model
    q, kv, g = cfg.heads * cfg.head_dim, cfg.kv_heads * cfg.head_dim, cfg.heads // cfg.kv_heads
    rope = cfg.positions == 0

    def dense(tag, n_in, n_out):
        return layers.dense(f"{p}.{tag}", in_features=n_in, out_features=n_out, tokens=rows)

    def vec(tag, op, elems, inputs=1):
        return layers.vector(f"{p}.{tag}", op, elems=elems, inputs=inputs)

    out = [vec("norm1", cfg.norm, rows * d), dense("q", d, q)]
    out += [vec("rope_q", "rope", rows * q)] if rope else []
    out += [dense("k", d, kv)] + ([vec("rope_k", "rope", rows * kv)] if rope else [])
    out += [vec("store_k", "kv_store", rows * kv), dense("v", d, kv)]
    out += [vec("store_v", "kv_store", rows * kv)]
    count = batch * cfg.kv_heads
    out += [
        layers.batched_matmul(f"{p}.qk", m=g * tokens, k=cfg.head_dim, n=span, count=count),
        vec("softmax", "softmax", count * g * tokens * span),
        layers.batched_matmul(f"{p}.av", m=g * tokens, k=span, n=cfg.head_dim, count=count),
        dense("o", q, d),
        vec("add1", "add", rows * d, inputs=2),
        vec("norm2", cfg.norm, rows * d),
    ]
    if cfg.mlp == "swiglu":
        out += [dense("gate", d, cfg.d_ff), dense("up", d, cfg.d_ff)]
        out += [vec("swiglu", "swiglu", rows * cfg.d_ff, inputs=2), dense("down", cfg.d_ff, d)]
    else:
        out += [dense("fc1", d, cfg.d_ff), vec("gelu", "gelu", rows * cfg.d_ff)]
        out += [dense("fc2", cfg.d_ff, d)]
    return out + [vec("add2", "add", rows * d, inputs=2)]


def _check(name: str, value: int, low: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def _network(cfg: DecoderConfig, tokens: int, span: int, batch: int) -> list[Layer]:
    rows = batch * tokens
    inputs = 2 if cfg.positions else 1  # token (+ position) embedding rows
    out = [layers.vector("embed", "embed", elems=rows * cfg.d_model, inputs=inputs)]
    for i in range(cfg.n_layers):
        out += _block(cfg, i, tokens, span, batch)
    return out + [
        layers.vector("norm_f", cfg.norm, elems=batch * cfg.d_model),
        layers.dense("lm_head", in_features=cfg.d_model, out_features=cfg.vocab, tokens=batch),
    ]


def prefill(cfg: DecoderConfig, prompt: int, batch: int = 1) -> list[Layer]:
    """Prefill of ``prompt`` tokens for ``batch`` sequences: GEMMs with ``M = batch *
    prompt``, causal attention over the prompt, ``prompt`` KV entries written per layer, and
    the LM head on the last position of each sequence (the first output token)."""
    _check("prompt", prompt)
    _check("batch", batch)
    if cfg.max_context and prompt > cfg.max_context:
        raise ValueError(f"prompt must be at most {cfg.max_context} tokens for {cfg.name}")
    return _network(cfg, prompt, prompt, batch)


def decode(cfg: DecoderConfig, context: int, batch: int = 1) -> list[Layer]:
    """Decode of one token for ``batch`` sequences with ``context`` tokens in the KV cache:
    GEMMs with ``M = batch``, attention over the cache and the new token (at most the
    window), one KV entry written per layer and sequence."""
    _check("context", context, low=0)
    _check("batch", batch)
    if cfg.max_context and context + 1 > cfg.max_context:
        raise ValueError(f"context must be below {cfg.max_context} tokens for {cfg.name}")
    span = min(context + 1, cfg.window) if cfg.window else context + 1
    return _network(cfg, 1, span, batch)
