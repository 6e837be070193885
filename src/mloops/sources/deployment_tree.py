"""Deployment trees: what one manifest's exposure depends on may sit in a sibling file.

An Istio AuthorizationPolicy or RequestAuthentication, an oauth2-proxy, or an ext-authz filter anywhere in
the scanned tree puts an authentication layer in front of the gateways and routes that other files declare
(kustomize and Helm trees keep them apart). Only the text of YAML and JSON files is searched here, within a
byte bound; the manifests themselves are analyzed like any file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

LAYOUT = "deployment-auth-layer"  # Item.layouts of every file of a tree that holds an authentication layer
MAX_BYTES = 1 << 20  # per file: policies are small; the rest of a huge file is not searched
_SUFFIXES = (".yaml", ".yml", ".json")
_AUTH_LAYER = re.compile(
    rb"""kind["']?\s*:\s*["']?(?:AuthorizationPolicy|RequestAuthentication)\b"""
    rb"|oauth2-proxy|envoy\.filters\.http\.ext_authz|\bext_authz\b"
)


def auth_layer_files(files: Iterable[str]) -> list[str]:
    """The YAML/JSON files among ``files`` that declare an authentication layer."""
    found = []
    for path in files:
        if not path.lower().endswith(_SUFFIXES):
            continue
        try:
            with open(path, "rb") as handle:
                head = handle.read(MAX_BYTES)
        except OSError:
            continue  # the scan reports unreadable files
        if _AUTH_LAYER.search(head):
            found.append(path)
    return found
