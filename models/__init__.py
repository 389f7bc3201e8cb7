"""npu-dse models: small flax NNX networks on offline data, QAT, and export to ``hw.graph``.

>>> from models import cnn_config
>>> cnn_config(quick=True).epochs
2

* ``models.data``: scikit-learn's bundled 8x8 digits as images or as row sequences, batching;
* ``models.cnn`` / ``models.transformer``: the CNN and the transformer classifier, with
  fake-quantization (QAT) layers and ``to_graph()`` to ``hw.graph`` nodes;
* ``models.extract``: the layers of any JAX function, read from its jaxpr;
* ``models.zoo``: shape tables of ResNet-18, MobileNetV2, a BERT-base layer and ViT-Ti/16;
* ``models.configs`` / ``models.train``: ``train_and_evaluate(config, workdir)`` with metrics,
  atomic checkpoints and resumption; ``load_checkpoint``; ``ptq`` to an ``hw.engine`` model.
"""

from models.cnn import CNN, QAT, ActQuant, QConv, QDense, QuantSpec, layer_spec, set_qat
from models.configs import TrainConfig, cnn_config, transformer_config
from models.data import Dataset, as_sequences, batches, load, load_digits, rows_with_positions
from models.extract import extract_workload
from models.train import create_model, evaluate, load_checkpoint, ptq, train_and_evaluate
from models.transformer import QAttention, QLayerNorm, Transformer
from models.zoo import ZOO, get_network

__all__ = [
    "ZOO",
    "extract_workload",
    "get_network",
    "CNN",
    "QAT",
    "ActQuant",
    "Dataset",
    "QAttention",
    "QConv",
    "QDense",
    "QLayerNorm",
    "QuantSpec",
    "TrainConfig",
    "Transformer",
    "as_sequences",
    "batches",
    "cnn_config",
    "create_model",
    "evaluate",
    "layer_spec",
    "load",
    "load_checkpoint",
    "load_digits",
    "ptq",
    "rows_with_positions",
    "set_qat",
    "train_and_evaluate",
    "transformer_config",
]
