"""Jupyter notebooks: saved outputs whose HTML and JavaScript run in the user's kernel session (XSS becomes
remote code execution), judged against the renderers' own fingerprints."""

from ..core import AttackClass

# The attack class of shared findings (malformed, limit reached) about this surface's files.
ATTACK_CLASS = AttackClass.NOTEBOOK_XSS
