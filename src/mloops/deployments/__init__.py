"""Deployments: Kubernetes manifests, Compose files and Dockerfiles of ML serving (open ports without
authentication, container escapes, shared tenants), and ``inspect-runtime`` for the running container."""

from ..core import AttackClass

# The attack class of shared findings (malformed, limit reached) about this surface's files.
ATTACK_CLASS = AttackClass.CONTAINER_ESCAPE
