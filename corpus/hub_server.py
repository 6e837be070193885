"""A stand-in for the Hugging Face Hub on 127.0.0.1, answering the documented endpoints a scan reads:

    GET /api/{models|datasets}/ORG/NAME/revision/REV   {"id", "sha", "siblings": [{"rfilename"}]}
    GET /api/{models|datasets}?author=ORG              a page of {"id"}, two a page, Link rel="next"
    GET /api/{models|datasets}/ORG/NAME/tree/REV       [{"type", "path", "oid", "size"}] (huggingface_hub's)
    GET /[datasets/]ORG/NAME/resolve/REV/FILE          the file, whole or by range requests
    HEAD the same                                      X-Repo-Commit, ETag, size (huggingface_hub's download)

Repositories are folders under ``root/models`` and ``root/datasets``; a repository whose name starts with
"private-" answers 401 without ``Authorization: Bearer TOKEN``. Every repository has one commit, its name's hash.
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.parse
from contextlib import AbstractContextManager
from pathlib import Path

from .loopback import LoopbackServer, QuietHandler, serving

TOKEN = "hf_test_token"
_RANGE = re.compile(r"bytes=(\d+)-(\d+)$")


def commit_of(repo: str) -> str:
    return hashlib.sha1(repo.encode()).hexdigest()


class HubServer(LoopbackServer):
    def __init__(self, root: Path) -> None:
        super().__init__(_Handler)
        self.root = root
        self.paths: list[str] = []  # every path asked for, in order


class _Handler(QuietHandler):
    server: HubServer

    def do_HEAD(self) -> None:
        self.do_GET()

    def send_body(self, body: bytes) -> None:
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.paths.append(self.path)
        url = urllib.parse.urlsplit(self.path)
        parts = [urllib.parse.unquote(part) for part in url.path.strip("/").split("/")]
        if parts[:1] == ["api"] and len(parts) == 2 and parts[1] in ("models", "datasets"):
            self._listing(parts[1], urllib.parse.parse_qs(url.query))
        elif parts[:1] == ["api"] and len(parts) == 6 and parts[4] == "revision":
            self._info(parts[1], f"{parts[2]}/{parts[3]}", parts[5])
        elif parts[:1] == ["api"] and len(parts) == 6 and parts[4] == "tree":
            self._tree(parts[1], f"{parts[2]}/{parts[3]}", parts[5])
        else:
            kind = "datasets" if parts[:1] == ["datasets"] else "models"
            parts = parts[1:] if kind == "datasets" else parts
            if len(parts) >= 5 and parts[2] == "resolve":
                self._file(kind, f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:]))
            else:
                self._answer(404, b"", {})

    def _repo(self, kind: str, repo: str, revision: str) -> Path | None:
        folder = self.server.root / kind / repo
        if not folder.is_dir() or revision not in ("main", commit_of(repo)):
            self._answer(404, b'{"error": "Repository not found"}', {})
            return None
        if repo.split("/")[1].startswith("private-") and self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._answer(401, b'{"error": "Invalid credentials"}', {})
            return None
        return folder

    def _info(self, kind: str, repo: str, revision: str) -> None:
        folder = self._repo(kind, repo, revision)
        if folder is None:
            return
        files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
        body = {"id": repo, "sha": commit_of(repo), "siblings": [{"rfilename": name} for name in files]}
        self._json(body, {})

    def _tree(self, kind: str, repo: str, revision: str) -> None:
        folder = self._repo(kind, repo, revision)
        if folder is None:
            return
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        entries = [
            {
                "type": "file",
                "path": str(p.relative_to(folder)),
                "oid": _blob_id(p.read_bytes()),
                "size": p.stat().st_size,
            }
            for p in files
        ]
        self._json(entries, {})

    def _listing(self, kind: str, query: dict[str, list[str]]) -> None:
        author = query.get("author", [""])[0]
        start = int(query.get("cursor", ["0"])[0])
        folder = self.server.root / kind / author
        repos = sorted(f"{author}/{p.name}" for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
        headers = {}
        if start + 2 < len(repos):
            following = urllib.parse.urlencode({"author": author, "cursor": start + 2})
            headers["Link"] = f'<{self.server.endpoint}/api/{kind}?{following}>; rel="next"'
        self._json([{"id": repo} for repo in repos[start : start + 2]], headers)

    def _file(self, kind: str, repo: str, revision: str, name: str) -> None:
        folder = self._repo(kind, repo, revision)
        if folder is None:
            return
        path = folder / name
        match = _RANGE.match(self.headers.get("Range", ""))
        if not path.is_file():
            self._answer(404, b"", {})
            return
        if match is None:  # a whole download, as huggingface_hub makes: it files the blob under its ETag
            body = path.read_bytes()
            self._answer(200, body, {"X-Repo-Commit": commit_of(repo), "ETag": f'"{_blob_id(body)}"'})
            return
        size = path.stat().st_size
        start, end = int(match.group(1)), min(int(match.group(2)), size - 1)
        if start >= size:
            self._answer(416, b"", {"Content-Range": f"bytes */{size}"})
            return
        with path.open("rb") as handle:
            handle.seek(start)
            body = handle.read(end + 1 - start)
        etag = f'"{commit_of(repo)}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"'
        self._answer(206, body, {"Content-Range": f"bytes {start}-{end}/{size}", "ETag": etag})

    def _json(self, body: object, headers: dict[str, str]) -> None:
        self._answer(200, json.dumps(body).encode(), {"Content-Type": "application/json", **headers})

    def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(key, value)
        self.end_headers()
        self.send_body(body)


def _blob_id(data: bytes) -> str:
    """Git's blob id, which the Hub gives as a file's oid and ETag."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def hub_server(root: Path) -> AbstractContextManager[HubServer]:
    return serving(HubServer(root))
