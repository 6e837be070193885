"""Models where MLflow keeps them: ``models:/NAME/VERSION``, ``models:/NAME@ALIAS``, ``models:/NAME`` (every
version), ``runs:/RUN_ID/PATH`` and ``mlflow://HOST:PORT`` (the whole registry: every registered model, every
version, every artifact).

The tracking server is ``MLFLOW_TRACKING_URI`` (``mlflow://`` names its own); credentials come from MLflow's
usual variables (``MLFLOW_TRACKING_TOKEN``, or ``MLFLOW_TRACKING_USERNAME`` and ``MLFLOW_TRACKING_PASSWORD``).
Only GET requests of the REST API are sent; artifacts are read through the server's artifact proxy
(``mlflow-artifacts:``) by range requests, like any ``https://`` object. A version's files are named
``models:/NAME/VERSION/FILE`` in the report.
"""

from __future__ import annotations

import base64
import functools
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .http import HttpObject, get_json
from .interface import Listed, RemoteError

SCHEMES = ("models:/", "runs:/", "mlflow://")
STORE_VARIABLES = ("MLFLOW_TRACKING_URI",)  # models:/ and runs:/ name objects of that server
LISTING_WORKERS = 8  # listing requests in flight during a registry walk
MAX_OBJECTS = 100_000  # artifacts one target may expand to: a registry walk is bounded like any other input
_PROXIED = "mlflow-artifacts:/"
_CREDENTIALS_HINT = "set MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"


def expand(uri: str, timeout: float) -> list[Listed]:
    """The artifact files ``uri`` names, each as an object URI ``open_object`` reads; no version: the artifact
    proxy's listing tells nothing that fixes a file's content."""
    return [Listed(name) for name in _artifact_uris(uri, timeout)]


def _artifact_uris(uri: str, timeout: float) -> list[str]:
    if uri.startswith("mlflow://"):
        server = _server("http://" + uri.removeprefix("mlflow://").strip("/"), timeout)
        found = server.files_of(server.every_version())
        return [f"{uri.rstrip('/')}/{name}/{version}/{path}" for name, version, path in found]
    server = _server(_tracking_uri(uri), timeout)
    if uri.startswith("runs:/"):
        run_id, _, path = uri.removeprefix("runs:/").partition("/")
        return [f"runs:/{run_id}/{name}" for name in server.list_files(server.run_root(run_id), path)]
    name, version, inside = _model_and_version(server, uri)
    if version and inside:  # one file or folder of a version
        return [
            f"models:/{name}/{version}/{path}" for path in server.list_files(server.version_root(name, version), inside)
        ]
    versions = [(name, version)] if version else [(name, v) for v in server.versions(name)]
    return [f"models:/{n}/{v}/{path}" for n, v, path in server.files_of(versions)]


def open_object(uri: str, timeout: float) -> HttpObject:
    if uri.startswith("mlflow://"):
        host, name, version, path = uri.removeprefix("mlflow://").split("/", 3)
        server = _server(f"http://{host}", timeout)
        return server.artifact(server.version_root(name, version), path)
    server = _server(_tracking_uri(uri), timeout)
    if uri.startswith("runs:/"):
        run_id, _, path = uri.removeprefix("runs:/").partition("/")
        return server.artifact(server.run_root(run_id), path)
    name, version, path = uri.removeprefix("models:/").split("/", 2)
    return server.artifact(server.version_root(name, version), path)


def _server(base: str, timeout: float) -> Server:
    """One client per server and credentials, so that a version's artifact root is looked up once for all its
    files."""
    return _client(base, timeout, tuple(_credentials().items()))


@functools.cache
def _client(base: str, timeout: float, credentials: tuple[tuple[str, str], ...]) -> Server:
    return Server(base, timeout, dict(credentials))


def _tracking_uri(uri: str) -> str:
    tracking = os.environ.get("MLFLOW_TRACKING_URI", "")
    if not tracking.startswith(("http://", "https://")):
        raise RemoteError(f"{uri}: set MLFLOW_TRACKING_URI to the tracking server's http(s) address")
    return tracking.rstrip("/")


def _model_and_version(server: Server, uri: str) -> tuple[str, str | None, str]:
    """``models:/NAME/VERSION[/PATH]`` or ``models:/NAME@ALIAS[/PATH]`` (one version, or a file or folder of it),
    or ``models:/NAME`` (every version)."""
    target = uri.removeprefix("models:/").strip("/")
    head, _, inside = target.partition("/")
    if "@" in head:
        name, alias = head.split("@", 1)
        found = server.get("registered-models/alias", name=name, alias=alias)
        return name, str(found["model_version"]["version"]), inside
    version, _, inside = inside.partition("/")
    return head, version or None, inside


class Server:
    """A tracking server's REST API, read-only."""

    def __init__(self, base: str, timeout: float, headers: dict[str, str]) -> None:
        self.base = base
        self.timeout = timeout
        self.headers = headers

    def get(self, endpoint: str, **query: str) -> dict[str, Any]:
        url = f"{self.base}/api/2.0/mlflow/{endpoint}?{urllib.parse.urlencode(query)}"
        found, _ = get_json(url, self.headers, self.timeout, _CREDENTIALS_HINT)
        if not isinstance(found, dict):
            raise RemoteError(f"{url}: an answer MLflow does not give")
        return found

    def pages(self, endpoint: str, key: str, **query: str) -> Iterator[dict[str, Any]]:
        token = ""
        while True:
            found = self.get(endpoint, **query, **({"page_token": token} if token else {}))
            yield from found.get(key, [])
            token = found.get("next_page_token", "")
            if not token:
                return

    def registered_models(self) -> list[str]:
        return [model["name"] for model in self.pages("registered-models/search", "registered_models")]

    def versions(self, name: str) -> list[str]:
        found = self.pages("model-versions/search", "model_versions", filter=f"name='{name}'")
        return sorted((str(v["version"]) for v in found), key=int)

    def every_version(self) -> list[tuple[str, str]]:
        """Every version of every registered model, the models' listings made a few at a time."""
        models = self.registered_models()
        with ThreadPoolExecutor(max_workers=LISTING_WORKERS) as pool:
            listed = zip(models, pool.map(self.versions, models), strict=True)
            return [(name, version) for name, found in listed for version in found]

    @functools.cache  # noqa: B019 - one lookup per version while its files are read (servers live as long)
    def version_root(self, name: str, version: str) -> str:
        return self.get("model-versions/get-download-uri", name=name, version=version)["artifact_uri"]

    @functools.cache  # noqa: B019
    def run_root(self, run_id: str) -> str:
        return self.get("runs/get", run_id=run_id)["run"]["info"]["artifact_uri"]

    def files_of(self, versions: list[tuple[str, str]]) -> Iterator[tuple[str, str, str]]:
        """The files of each version, listed a few versions at a time, in the versions' order."""
        count = 0
        with ThreadPoolExecutor(max_workers=LISTING_WORKERS) as pool:
            listed = pool.map(lambda pair: self.list_files(self.version_root(*pair), ""), versions)
            for (name, version), paths in zip(versions, listed, strict=True):
                for path in paths:
                    count += 1
                    if count > MAX_OBJECTS:
                        raise RemoteError(
                            f"{self.base}: more than {MAX_OBJECTS} artifacts; scan fewer models at a time"
                        )
                    yield name, version, path

    def list_files(self, root: str, path: str) -> list[str]:
        """The files under ``path`` of an artifact root, recursively (a file names itself)."""
        start = _proxied_path(self.base, root)
        files: list[str] = []
        pending = [path.strip("/")]
        while pending:
            current = pending.pop()
            query = {"path": f"{start}/{current}".strip("/")}
            listed = self.get_artifacts(query)
            if not listed and current:
                files.append(current)  # a file lists as nothing: it is the object itself
            for entry in listed:
                child = f"{current}/{entry['path'].rsplit('/', 1)[-1]}".strip("/")
                (pending if entry.get("is_dir") else files).append(child)
            if len(files) + len(pending) > MAX_OBJECTS:
                raise RemoteError(f"{self.base}: more than {MAX_OBJECTS} artifacts under {root}")
        return sorted(files)

    def get_artifacts(self, query: dict[str, str]) -> list[dict[str, Any]]:
        url = f"{self.base}/api/2.0/mlflow-artifacts/artifacts?{urllib.parse.urlencode(query)}"
        found, _ = get_json(url, self.headers, self.timeout, _CREDENTIALS_HINT)
        files = found.get("files", []) if isinstance(found, dict) else None
        if not isinstance(files, list):
            raise RemoteError(f"{url}: an answer MLflow does not give")
        return files

    def artifact(self, root: str, path: str) -> HttpObject:
        # Names come from the server's listing: quoted, so that none reaches another endpoint.
        where = urllib.parse.quote(f"{_proxied_path(self.base, root)}/{path}", safe="/")
        if any(part in ("", ".", "..") for part in where.split("/")):
            raise RemoteError(f"{self.base}: artifact path {path!r} leaves its artifact root")
        url = f"{self.base}/api/2.0/mlflow-artifacts/artifacts/{where}"
        return HttpObject(url, self.timeout, self.headers)


def _proxied_path(base: str, root: str) -> str:
    """The artifact proxy's path of an artifact root; roots elsewhere (S3, a server's local disk) are not read."""
    if not root.startswith(_PROXIED):
        raise RemoteError(
            f"{base}: artifacts are stored at {root}, which only the artifact proxy would let mloops read"
        )
    return root.removeprefix(_PROXIED).strip("/")


def _credentials() -> dict[str, str]:
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if token:
        return {"Authorization": f"Bearer {token}"}
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if user and password:
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
    return {}
