"""Model files that run code when loaded: pickle and its families (joblib, PyTorch, NumPy object arrays),
Keras Lambda layers and configs, TorchScript and torch.export programs, TensorFlow graphs, ONNX external data,
skops, NeMo, GGUF and their packagings (MLflow, BentoML, TorchServe). One module per format; each declares
the formats it recognises in ``FORMATS`` (see ``registry.py``)."""

from ..core import AttackClass

# The attack class of shared findings (malformed, limit reached) about this surface's files.
ATTACK_CLASS = AttackClass.MALICIOUS_MODEL
