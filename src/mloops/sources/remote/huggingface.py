"""Hugging Face repositories: ``hf://ORG/REPO[@REVISION]`` (a model), ``hf://datasets/ORG/REPO[@REVISION]``
(a dataset) and ``hf://ORG`` (every model and dataset of an organisation or user).

The Hub's documented REST endpoints are read (GET only), at ``HF_ENDPOINT`` (default https://huggingface.co)
with ``HF_TOKEN`` when set; ``HF_HUB_OFFLINE`` is honoured (an offline scan reads local files, not the Hub). A
revision is resolved to its commit first, and every file is named ``hf://ORG/REPO@COMMIT/FILE`` in the report:
what was scanned is pinned, and a later push cannot change it. Files are read by range requests on their
``resolve`` URL, like any ``https://`` object.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from .http import HttpObject, get_json
from .interface import Listed, RemoteError

SCHEMES = ("hf://",)
STORE_VARIABLES = ("HF_ENDPOINT",)
MAX_REPOSITORIES = 10_000  # an organisation walk is bounded like any other input
KINDS = {"models": "", "datasets": "datasets/"}  # API collection -> URL prefix of its repositories


def expand(uri: str, timeout: float) -> list[Listed]:
    """Every file of the repository (at its resolved commit), or of every repository of an organisation; a
    file's version is its commit, which fixes its content."""
    hub = Hub(timeout)
    kind, repo, revision = _parse(uri)
    if "/" not in repo:  # an organisation or user
        repos = [(kind_, found) for kind_ in KINDS for found in hub.repositories(kind_, repo)]
        if not repos:
            raise RemoteError(f"{uri}: the Hub lists no model or dataset of {repo!r}")
        return [listed for kind_, found in repos for listed in _files_or_itself(hub, kind_, found)]
    return hub.files(kind, repo, revision)


def _files_or_itself(hub: Hub, kind: str, repo: str) -> list[Listed]:
    """A repository of an organisation walk that cannot be listed (private, gated) stays in the scan as itself:
    opening it reports why, and the rest of the organisation is still scanned."""
    try:
        return hub.files(kind, repo, "main")
    except RemoteError:
        return [Listed(f"hf://{KINDS[kind]}{repo}")]


def open_object(uri: str, timeout: float) -> HttpObject:
    kind, repo, rest = _parse(uri)
    commit, _, path = rest.partition("/")
    hub = Hub(timeout)
    if not path:  # a repository that could not be listed: listing it again says why
        hub.files(kind, repo, commit)
        raise RemoteError(f"{uri}: name a file of the repository, or the repository itself")
    url = f"{hub.endpoint}/{KINDS[kind]}{repo}/resolve/{urllib.parse.quote(commit, safe='')}/"
    found = HttpObject(url + urllib.parse.quote(path, safe="/"), timeout, hub.headers)
    if _is_commit(commit):  # a file at a commit never changes: the commit is its version, as listed
        found.version = commit
    return found


def _is_commit(revision: str) -> bool:
    return len(revision) == 40 and all(c in "0123456789abcdef" for c in revision)


def _parse(uri: str) -> tuple[str, str, str]:
    """(collection, ORG or ORG/REPO, what follows @: a revision, or COMMIT/FILE for one file)."""
    target = uri.removeprefix("hf://").strip("/")
    kind = "models"
    for collection in ("datasets", "models"):
        if target.startswith(f"{collection}/"):
            kind, target = collection, target.removeprefix(f"{collection}/")
    repo, _, revision = target.partition("@")
    if repo.count("/") > 1 or not repo:
        raise RemoteError(f"{uri}: expected hf://ORG/REPO[@REVISION] or hf://ORG")
    return kind, repo, revision or "main"


class Hub:
    def __init__(self, timeout: float) -> None:
        if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
            raise RemoteError("HF_HUB_OFFLINE is set: scan the local Hugging Face cache folder instead")
        self.endpoint = (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")
        self.timeout = timeout
        token = os.environ.get("HF_TOKEN")
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def files(self, kind: str, repo: str, revision: str) -> list[Listed]:
        quoted = urllib.parse.quote(revision, safe="")
        info = self.get(f"/api/{kind}/{repo}/revision/{quoted}")
        commit = str(info.get("sha") or "")
        if not _is_commit(commit):
            raise RemoteError(f"{self.endpoint}: {repo}@{revision} has no commit")
        prefix = "hf://datasets/" if kind == "datasets" else "hf://"
        names = sorted(str(entry["rfilename"]) for entry in info.get("siblings") or [])
        return [Listed(f"{prefix}{repo}@{commit}/{name}", commit) for name in names]

    def repositories(self, kind: str, author: str) -> list[str]:
        found: list[str] = []
        url: str | None = f"/api/{kind}?{urllib.parse.urlencode({'author': author, 'limit': 1000})}"
        while url:
            page, url = self.get_page(url)
            found += [str(entry["id"]) for entry in page]
            if len(found) > MAX_REPOSITORIES:
                raise RemoteError(f"{self.endpoint}: {author} has more than {MAX_REPOSITORIES} {kind}")
        return found

    def get(self, path: str) -> dict[str, Any]:
        document, _ = self._request(path)
        if not isinstance(document, dict):
            raise RemoteError(f"{self.endpoint}{path}: an answer the Hub does not give")
        return document

    def get_page(self, path: str) -> tuple[list[dict[str, Any]], str | None]:
        """One page of a listing, and the next page's path (the Link header's rel="next")."""
        document, link = self._request(path)
        if not isinstance(document, list):
            raise RemoteError(f"{self.endpoint}{path}: an answer the Hub does not give")
        following = None
        for part in (link or "").split(","):
            if 'rel="next"' in part and "<" in part:
                following = part[part.index("<") + 1 : part.index(">")].removeprefix(self.endpoint)
        return document, following

    def _request(self, path: str) -> tuple[Any, str | None]:
        url = path if path.startswith(("http://", "https://")) else self.endpoint + path
        found, headers = get_json(url, self.headers, self.timeout, "set HF_TOKEN for private or gated repositories")
        return found, headers.get("Link")
