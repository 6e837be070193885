"""Datasets: Hugging Face dataset folders and their loading scripts (code run by ``load_dataset``), and
Arrow/Parquet data whose extension types name Python classes."""

from ..core import AttackClass

# The attack class of shared findings (malformed, limit reached) about this surface's files.
ATTACK_CLASS = AttackClass.MALICIOUS_DATASET
