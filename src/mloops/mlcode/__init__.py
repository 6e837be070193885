"""ML code and secrets: Python sources (unsafe loads, remote code), chat templates (Jinja2 run at tokenize
time) and credentials left in code and configs."""

from ..core import AttackClass

# The attack class of shared findings (malformed, limit reached) about this surface's files.
ATTACK_CLASS = AttackClass.MALICIOUS_MODEL
