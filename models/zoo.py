"""Built-in shape tables of well-known networks, written from their papers' definitions.

Each builder returns the inference graph as a list of :class:`hw.layers.Layer` (see
:func:`get_network` for a :class:`~hw.types.Workload`): batch norm folded into the conv before
it (no layer), biases and position embeddings fused into the GEMM before them, activations,
residual adds, pooling, softmax and layernorm as vector layers after the GEMM they follow, as
``hw.graph.workload`` lays them out (so that fusion can remove their round trip).

================  ===========  =============  ===================================================
network           layers       MACs, batch 1  published
                  (GEMMs)
================  ===========  =============  ===================================================
resnet18          48 (21)      1,814,073,344  1.8 G multiply-adds (He et al. 2016, Table 1)
mobilenet_v2      99 (53)        300,774,272  300 M multiply-adds (Sandler et al. 2018, Table 4)
bert_base_layer   14 (8)         931,135,488  from the shapes of Devlin et al. 2019 (d 768,
                                              12 heads, FFN 3072) at sequence 128
vit_ti16          171 (98)     1,253,683,200  1.3 G (Touvron et al. 2021, DeiT-Ti; two
                                              significant digits: 1.25-1.35 G)
alexnet_conv      10 (5)         665,784,864  666 M in CONV1-5 (Krizhevsky et al. 2012, two
                                              towers; Eyeriss runs these, JSSC 2017)
================  ===========  =============  ===================================================

>>> wl = get_network("bert_base_layer")
>>> wl.kinds[:7]
('dense', 'dense', 'dense', 'matmul', 'softmax', 'matmul', 'dense')
"""

from __future__ import annotations

import dataclasses

from hw import layers
from hw.layers import Layer, conv_out_size
from hw.types import Workload
from hw.x64 import x64

# MobileNetV2 bottlenecks (Sandler et al. 2018, Table 2): expansion t, channels c, repeats n,
# first stride s.
MOBILENET_V2_BLOCKS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def _conv(name, h, c, f, k, *, stride=1, pad=0, groups=1, batch=1, act=True) -> list[Layer]:
    """A square ``k x k`` conv on an ``h x h x c`` input, and its ReLU (ReLU6 costs the same)."""
    lay = layers.conv2d(
        name,
        ifmap_h=h,
        ifmap_w=h,
        channels=c,
        num_filters=f,
        filter_h=k,
        filter_w=k,
        stride=stride,
        padding=pad,
        groups=groups,
        batch=batch,
    )
    relu = layers.vector(f"{name}.relu", "relu", elems=lay.ofmap_elems)
    return [lay, relu] if act else [lay]


def _padded_pool(name, h, c, *, window, stride, pad, batch) -> Layer:
    """Pooling with ``pad`` on every side: ``hw.layers.pool`` has no padding, so the layer is
    pooled over the padded ``(h + 2 pad)`` map (same output size and ``window^2`` ops per
    output as a padded pool) and its ifmap reset to the ``h x h`` elements actually read."""
    lay = layers.pool(
        name,
        ifmap_h=h + 2 * pad,
        ifmap_w=h + 2 * pad,
        channels=c,
        window=window,
        stride=stride,
        batch=batch,
    )
    return dataclasses.replace(lay, ifmap_elems=batch * h * h * c)


def _global_pool(name, h, c, batch) -> Layer:
    """Global average pooling of an ``h x h x c`` map: one add per input element."""
    return layers.pool(name, ifmap_h=h, ifmap_w=h, channels=c, window=h, stride=h, batch=batch)


def _basic_block(name, h, c, f, stride, batch) -> list[Layer]:
    """ResNet BasicBlock: 3x3/s conv, ReLU, 3x3 conv, (+ 1x1/s downsample), add, ReLU. The
    downsample runs first, so that the second conv's output fuses into the add."""
    out = []
    if stride != 1 or c != f:
        out += _conv(f"{name}.downsample", h, c, f, 1, stride=stride, batch=batch, act=False)
    out += _conv(f"{name}.conv1", h, c, f, 3, stride=stride, pad=1, batch=batch)
    ho = conv_out_size(h, 3, stride, 1, 1, "floor")
    out += _conv(f"{name}.conv2", ho, f, f, 3, pad=1, batch=batch, act=False)
    elems = batch * ho * ho * f
    out += [layers.vector(f"{name}.add", "add", elems=elems, inputs=2)]
    return out + [layers.vector(f"{name}.relu", "relu", elems=elems)]


def resnet18(batch: int = 1, image: int = 224) -> list[Layer]:
    """ResNet-18 (He et al. 2016, Table 1; torchvision's padding): conv1 7x7/2 pad 3, max pool
    3x3/2 pad 1, four stages of two BasicBlocks (64, 128, 256, 512 channels, stride 2 and a
    1x1/2 downsample conv at the start of stages 2-4), global average pool, fc 512 -> 1000.
    At 224 x 224: 1,814,073,344 MACs ("1.8 x 10^9 FLOPs", multiply-adds, in Table 1)."""
    out = _conv("conv1", image, 3, 64, 7, stride=2, pad=3, batch=batch)
    h = conv_out_size(image, 7, 2, 3, 1, "floor")
    out.append(_padded_pool("maxpool", h, 64, window=3, stride=2, pad=1, batch=batch))
    h, c = conv_out_size(h, 3, 2, 1, 1, "floor"), 64
    for stage, f in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            stride = 2 if stage > 1 and block == 0 else 1
            out += _basic_block(f"layer{stage}.{block}", h, c, f, stride, batch)
            h, c = conv_out_size(h, 3, stride, 1, 1, "floor"), f
    out.append(_global_pool("avgpool", h, c, batch))
    return out + [layers.dense("fc", in_features=512, out_features=1000, tokens=batch)]


def _inverted_residual(name, h, c, f, t, stride, batch) -> list[Layer]:
    """MobileNetV2 bottleneck: 1x1 expand to ``t c`` + ReLU6 (none when ``t = 1``), 3x3
    depthwise/s + ReLU6, linear 1x1 projection to ``f``, residual add when ``s = 1, c = f``."""
    hidden = c * t
    out = [] if t == 1 else _conv(f"{name}.expand", h, c, hidden, 1, batch=batch)
    out += _conv(
        f"{name}.dw", h, hidden, hidden, 3, stride=stride, pad=1, groups=hidden, batch=batch
    )
    ho = conv_out_size(h, 3, stride, 1, 1, "floor")
    out += _conv(f"{name}.project", ho, hidden, f, 1, batch=batch, act=False)
    if stride == 1 and c == f:
        out.append(layers.vector(f"{name}.add", "add", elems=batch * ho * ho * f, inputs=2))
    return out


def mobilenet_v2(batch: int = 1, image: int = 224) -> list[Layer]:
    """MobileNetV2, width 1.0 (Sandler et al. 2018, Table 2): conv 3x3/2 3 -> 32, the 17
    bottlenecks of :data:`MOBILENET_V2_BLOCKS`, conv 1x1 320 -> 1280, global average pool,
    fc 1280 -> 1000. At 224 x 224: 300,774,272 MACs (the paper: 300 M multiply-adds)."""
    out = _conv("conv1", image, 3, 32, 3, stride=2, pad=1, batch=batch)
    h, c, i = conv_out_size(image, 3, 2, 1, 1, "floor"), 32, 0
    for t, f, n, s in MOBILENET_V2_BLOCKS:
        for j in range(n):
            stride = s if j == 0 else 1
            out += _inverted_residual(f"block{i}", h, c, f, t, stride, batch)
            h, c, i = conv_out_size(h, 3, stride, 1, 1, "floor"), f, i + 1
    out += _conv("conv_last", h, c, 1280, 1, batch=batch)
    out.append(_global_pool("avgpool", h, 1280, batch))
    return out + [layers.dense("classifier", in_features=1280, out_features=1000, tokens=batch)]


def attention(name, *, tokens: int, batch: int, d_model: int, heads: int) -> list[Layer]:
    """Multi-head self-attention on ``batch`` sequences of ``tokens``: Q, K, V projections
    ``d x d``, per head ``Q K^T`` (``tokens x d/h x tokens``) and ``A V`` (``tokens x tokens x
    d/h``) as batched matmuls with ``count = heads * batch``, softmax over ``heads * tokens^2``
    scores per sequence, output projection (as ``hw.graph``'s ``Attention``)."""
    rows, dh, count = batch * tokens, d_model // heads, batch * heads
    proj = [
        layers.dense(f"{name}.{p}", in_features=d_model, out_features=d_model, tokens=rows)
        for p in ("q", "k", "v")
    ]
    return proj + [
        layers.batched_matmul(f"{name}.qk", m=tokens, k=dh, n=tokens, count=count),
        layers.vector(f"{name}.softmax", "softmax", elems=count * tokens * tokens),
        layers.batched_matmul(f"{name}.av", m=tokens, k=tokens, n=dh, count=count),
        layers.dense(f"{name}.o", in_features=d_model, out_features=d_model, tokens=rows),
    ]


def encoder_layer(
    name, *, tokens: int, batch: int, d_model: int, heads: int, d_mlp: int, pre_norm: bool
) -> list[Layer]:
    """A transformer encoder layer: attention and a GELU MLP ``d -> d_mlp -> d``, each with a
    residual add and a layernorm, before the sublayer (``pre_norm``, ViT) or after the add
    (post-norm, BERT)."""
    elems, rows = batch * tokens * d_model, batch * tokens

    def norm(tag):
        return [layers.vector(f"{name}.{tag}", "layernorm", elems=elems)]

    def add(tag):
        return [layers.vector(f"{name}.{tag}", "add", elems=elems, inputs=2)]

    att = attention(f"{name}.attn", tokens=tokens, batch=batch, d_model=d_model, heads=heads)
    mlp = [
        layers.dense(f"{name}.fc1", in_features=d_model, out_features=d_mlp, tokens=rows),
        layers.vector(f"{name}.gelu", "gelu", elems=rows * d_mlp),
        layers.dense(f"{name}.fc2", in_features=d_mlp, out_features=d_model, tokens=rows),
    ]
    if pre_norm:
        return norm("ln1") + att + add("add1") + norm("ln2") + mlp + add("add2")
    return att + add("add1") + norm("ln1") + mlp + add("add2") + norm("ln2")


def bert_base_layer(seq: int = 128, batch: int = 1) -> list[Layer]:
    """One BERT-base encoder layer (Devlin et al. 2019: d = 768, 12 heads of 64, FFN 3072,
    post-norm, GELU). GEMM MACs per sequence: ``seq (4 d^2 + 2 d 3072) + 2 h seq^2 64``;
    931,135,488 at ``seq = 128``."""
    return encoder_layer(
        "layer", tokens=seq, batch=batch, d_model=768, heads=12, d_mlp=3072, pre_norm=False
    )


def vit_ti16(batch: int = 1, image: int = 224) -> list[Layer]:
    """ViT-Ti/16 = DeiT-Ti (Touvron et al. 2021): patch embedding conv 16x16/16 3 -> 192,
    ``(image / 16)^2`` patches plus the class token, 12 pre-norm layers of d = 192, 3 heads,
    MLP 768, final layernorm, head 192 -> 1000 on the class token. At 224 x 224: 197 tokens,
    1,253,683,200 MACs (published: 1.3 G)."""
    out = [
        layers.conv2d(
            "patch_embed",
            ifmap_h=image,
            ifmap_w=image,
            channels=3,
            num_filters=192,
            filter_h=16,
            filter_w=16,
            stride=16,
            batch=batch,
        )
    ]
    tokens = (image // 16) ** 2 + 1
    for i in range(12):
        out += encoder_layer(
            f"block{i}", tokens=tokens, batch=batch, d_model=192, heads=3, d_mlp=768, pre_norm=True
        )
    out.append(layers.vector("norm", "layernorm", elems=batch * tokens * 192))
    return out + [layers.dense("head", in_features=192, out_features=1000, tokens=batch)]


def alexnet_conv(batch: int = 1, image: int = 227, relu: bool = True) -> list[Layer]:
    """AlexNet's five conv layers with their ReLUs (Krizhevsky et al. 2012; the shapes Eyeriss
    runs, Chen et al., JSSC 2017): CONV1 11x11/4 3 -> 96 on 227 x 227; CONV2 5x5 pad 2
    96 -> 256 on 27 x 27; CONV3 3x3 pad 1 256 -> 384, CONV4 384 -> 384 and CONV5 384 -> 256 on
    13 x 13; CONV2, 4 and 5 in two groups (the two GPU towers). The pooling and normalization
    between them and the fully connected layers are left out, as in Eyeriss's CONV1-5 figures;
    ``relu=False`` leaves out the ReLUs too (a chip that applies them on the way out of its
    array, as Eyeriss does). At 227 x 227: 665,784,864 MACs."""
    h1 = conv_out_size(image, 11, 4, 0, 1, "floor")  # 55
    h2 = conv_out_size(h1, 3, 2, 0, 1, "floor")  # 27, after the 3x3/2 max pool
    h3 = conv_out_size(h2, 3, 2, 0, 1, "floor")  # 13
    return (
        _conv("conv1", image, 3, 96, 11, stride=4, batch=batch, act=relu)
        + _conv("conv2", h2, 96, 256, 5, pad=2, groups=2, batch=batch, act=relu)
        + _conv("conv3", h3, 256, 384, 3, pad=1, batch=batch, act=relu)
        + _conv("conv4", h3, 384, 384, 3, pad=1, groups=2, batch=batch, act=relu)
        + _conv("conv5", h3, 384, 256, 3, pad=1, groups=2, batch=batch, act=relu)
    )


ZOO = {
    "resnet18": resnet18,
    "mobilenet_v2": mobilenet_v2,
    "bert_base_layer": bert_base_layer,
    "vit_ti16": vit_ti16,
    "alexnet_conv": alexnet_conv,
}
"""Network name -> builder of its layers (keyword arguments: ``batch`` and ``image`` or
``seq``)."""


@x64
def get_network(name: str, **kw) -> Workload:
    """The :class:`~hw.types.Workload` of a built-in network, e.g.
    ``get_network("resnet18", batch=8)``."""
    if name not in ZOO:
        raise ValueError(f"unknown network {name!r}; known: {', '.join(ZOO)}")
    return layers.workload(ZOO[name](**kw))
