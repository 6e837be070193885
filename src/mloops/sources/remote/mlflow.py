"""Models where MLflow keeps them: ``models:/NAME/VERSION``, ``models:/NAME@ALIAS``, ``models:/NAME`` (every
version), ``runs:/RUN_ID/PATH`` and ``mlflow://HOST:PORT`` (the whole registry: every registered model, every
version, every artifact).

The tracking server is ``MLFLOW_TRACKING_URI`` (``mlflow://`` names its own); credentials come from MLflow's
usual variables (``MLFLOW_TRACKING_TOKEN``, or ``MLFLOW_TRACKING_USERNAME`` and ``MLFLOW_TRACKING_PASSWORD``).
Only GET requests of the REST API are sent. Artifacts are read by range requests where the server says they
are: through its artifact proxy (``mlflow-artifacts:``), like any ``https://`` object, or straight from the
object store of an artifact root in S3, GCS or Azure (a server run with ``--no-serve-artifacts``), with that
store's own credentials and MLflow's ``MLFLOW_S3_ENDPOINT_URL``, whose listings give each file's version. A
version's files are named ``models:/NAME/VERSION/FILE`` in the report.
"""

from __future__ import annotations

import base64
import functools
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from . import objectstore
from .http import HttpObject, get_json
from .interface import Listed, RemoteError, RemoteObject

SCHEMES = ("models:/", "runs:/", "mlflow://")
# models:/ and runs:/ name objects of that server, kept in its artifact proxy or in an object store
STORE_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_S3_ENDPOINT_URL", *objectstore.STORE_VARIABLES)
LISTING_WORKERS = 8  # listing requests in flight during a registry walk
MAX_OBJECTS = 100_000  # artifacts one target may expand to: a registry walk is bounded like any other input
_PROXIED = "mlflow-artifacts:/"
_T = TypeVar("_T")
_CREDENTIALS_HINT = "set MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"


def expand(uri: str, timeout: float) -> list[Listed]:
    """The artifact files ``uri`` names, each as an object URI ``open_object`` reads, with the version an object
    store's listing gives (the artifact proxy's listing tells nothing that fixes a file's content)."""
    if uri.startswith("mlflow://"):
        server = _server("http://" + uri.removeprefix("mlflow://").strip("/"), timeout)
        return list(server.files_of(server.every_version(), uri.rstrip("/")))
    server = _server(_tracking_uri(uri), timeout)
    if uri.startswith("runs:/"):
        run_id, _, inside = uri.removeprefix("runs:/").partition("/")
        listed = server.list_files(server.run_root(run_id), inside)
        return [Listed(f"runs:/{run_id}/{path}", tag) for path, tag in listed]
    name, version, inside = _model_and_version(server, uri)
    if version and inside:  # one file or folder of a version
        listed = server.list_files(server.version_root(name, version), inside)
        return [Listed(f"models:/{name}/{version}/{path}", tag) for path, tag in listed]
    versions = [(name, version)] if version else [(name, v) for v in server.versions(name)]
    return list(server.files_of(versions, "models:"))


def open_object(uri: str, timeout: float) -> RemoteObject:
    if uri.startswith("mlflow://"):
        host, name, version, path = _parts(uri.removeprefix("mlflow://"), 4)
        return _server(f"http://{host}", timeout).version_file(name, version, path)
    server = _server(_tracking_uri(uri), timeout)
    if uri.startswith("runs:/"):
        run_id, _, path = uri.removeprefix("runs:/").partition("/")
        return server.artifact(server.run_root(run_id), path)
    name, version, path = _parts(uri.removeprefix("models:/"), 3)
    return server.version_file(name, version, path)


def _parts(text: str, count: int) -> list[str]:
    """``text`` split on its first ``count - 1`` slashes, the missing parts empty."""
    found = text.split("/", count - 1)
    return found + [""] * (count - len(found))


def _server(base: str, timeout: float) -> Server:
    """One client per server and credentials, so that a version's artifact root is looked up once for all its
    files."""
    return _client(base, timeout, tuple(credential_headers().items()))


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

    def files_of(self, versions: list[tuple[str, str]], prefix: str) -> Iterator[Listed]:
        """Every file of each version, as ``PREFIX/NAME/VERSION/FILE`` with its listed version, in the versions'
        order. A version whose files cannot be listed, or that has none, is one entry naming the version: opening
        it says why, and one broken version does not hide the others. Versions sharing an artifact root
        (registered from one logged model) share its listing; lookups and listings are made a few at a time."""
        with ThreadPoolExecutor(max_workers=LISTING_WORKERS) as pool:
            roots = list(pool.map(lambda pair: _or_failure(self.version_root, *pair), versions))
            distinct = list(dict.fromkeys(root for root in roots if isinstance(root, str)))
            listed = pool.map(lambda root: _or_failure(self.list_files, root, ""), distinct)
            listings = dict(zip(distinct, listed, strict=True))
        count = 0
        for (name, version), root in zip(versions, roots, strict=True):
            files = listings[root] if isinstance(root, str) else root
            if isinstance(files, RemoteError) or not files:
                yield Listed(f"{prefix}/{name}/{version}")
                continue
            for path, tag in files:
                count += 1
                if count > MAX_OBJECTS:
                    raise RemoteError(f"{self.base}: more than {MAX_OBJECTS} artifacts; scan fewer models at a time")
                yield Listed(f"{prefix}/{name}/{version}/{path}", tag)

    def version_file(self, name: str, version: str, path: str) -> RemoteObject:
        root = self.version_root(name, version)
        if not path:  # a version that could not be listed, or has no file: listing it again says why
            if self.list_files(root, ""):
                raise RemoteError(f"{self.base}: name a file of model {name} version {version}")
            raise RemoteError(f"{self.base}: model {name} version {version} has no artifact file at {root}")
        return self.artifact(root, path)

    def list_files(self, root: str, path: str) -> list[tuple[str, str | None]]:
        """The files under ``path`` of an artifact root, recursively (a file names itself), each with the
        version its listing gives."""
        if _in_store(root):
            return _store_files(root, path, self.timeout)
        return [(file, None) for file in self._proxied_files(root, path)]

    def _proxied_files(self, root: str, path: str) -> list[str]:
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

    def artifact(self, root: str, path: str) -> RemoteObject:
        # Names come from the server's listing or the user: none may reach another endpoint or object.
        if any(part in ("", ".", "..") for part in path.split("/")):
            raise RemoteError(f"{self.base}: artifact path {path!r} leaves its artifact root")
        if _in_store(root):
            return objectstore.open_object(f"{root.rstrip('/')}/{path}", self.timeout, _s3_endpoint(root))
        where = urllib.parse.quote(f"{_proxied_path(self.base, root)}/{path}", safe="/")
        url = f"{self.base}/api/2.0/mlflow-artifacts/artifacts/{where}"
        return HttpObject(url, self.timeout, self.headers)


def _or_failure(call: Callable[..., _T], *args: str) -> _T | RemoteError:
    try:
        return call(*args)
    except RemoteError as failure:
        return failure


def _in_store(root: str) -> bool:
    return root.lower().startswith(objectstore.SCHEMES)


def _store_files(root: str, path: str, timeout: float) -> list[tuple[str, str | None]]:
    """The objects under ``path`` of an artifact root in an object store, named relative to the root."""
    start = root.rstrip("/") + "/"
    found = objectstore.expand(f"{start}{path.strip('/')}", timeout, _s3_endpoint(root))
    return [(item.uri.removeprefix(start), item.version) for item in found if item.uri.startswith(start)]


def _s3_endpoint(root: str) -> str | None:
    """The S3-compatible server MLflow's own clients use for an ``s3://`` root (MinIO beside a self-hosted
    MLflow), before botocore's usual settings."""
    if not root.lower().startswith("s3://"):
        return None
    return os.environ.get("MLFLOW_S3_ENDPOINT_URL") or None


def _proxied_path(base: str, root: str) -> str:
    """The artifact proxy's path of an artifact root; roots elsewhere (a server's local disk, HDFS, DBFS) are not
    read."""
    if not root.startswith(_PROXIED):
        raise RemoteError(
            f"{base}: artifacts are stored at {root}, which neither the artifact proxy nor an object store "
            "mloops reads would let it read"
        )
    return root.removeprefix(_PROXIED).strip("/")


def credential_headers() -> dict[str, str]:
    """The Authorization header MLflow's own clients would send, from its usual variables."""
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if token:
        return {"Authorization": f"Bearer {token}"}
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if user and password:
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
    return {}
