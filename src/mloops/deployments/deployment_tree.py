"""Deployment trees: what one manifest's exposure depends on may sit in a sibling file.

An Istio AuthorizationPolicy or RequestAuthentication (oauth2-proxy is wired in through a CUSTOM one), or an
Envoy ext-authz filter, anywhere in the scanned tree puts an authentication layer in front of the gateways
and routes that other files declare (kustomize and Helm trees keep them apart). An oauth2-proxy container on
its own protects only the ports that lead to it (k8s_manifest.py judges that per Service). Only the text of
YAML and JSON files is searched here, within a byte bound; the manifests themselves are analyzed like any
file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

LAYOUT = "deployment-auth-layer"  # Item.layouts of every file of a tree that holds an authentication layer
MAX_BYTES = 1 << 20  # per file: policies are small; the rest of a huge file is not searched
# Only files that look like manifests or Envoy configs in their first bytes are searched further: a tree's
# big data JSON (tokenizer.json, vocabularies) is not read twice. Missing a layer only leaves findings up.
HEAD_BYTES = 1 << 16
_CONFIG_HEAD = re.compile(rb"apiVersion|ext_authz|http_filters|static_resources")
_SUFFIXES = (".yaml", ".yml", ".json")
_AUTH_LAYER = re.compile(
    rb"""kind["']?\s*:\s*["']?(?:AuthorizationPolicy|RequestAuthentication)\b"""
    rb"|envoy\.filters\.http\.ext_authz|\bext_authz\b"
)


def auth_layer_files(files: Iterable[str]) -> list[str]:
    """The YAML/JSON files among ``files`` that declare an authentication layer."""
    found = []
    for path in files:
        if not path.lower().endswith(_SUFFIXES):
            continue
        try:
            with open(path, "rb") as handle:
                head = handle.read(HEAD_BYTES)
                if not _CONFIG_HEAD.search(head):
                    continue
                head += handle.read(MAX_BYTES - HEAD_BYTES)
        except OSError:
            continue  # the scan reports unreadable files
        if _AUTH_LAYER.search(head):
            found.append(path)
    return found
