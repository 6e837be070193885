"""Deployments: Kubernetes manifests, Compose files and Dockerfiles of ML serving (open ports without
authentication, container escapes, shared tenants), and ``inspect-runtime`` for the running container."""
