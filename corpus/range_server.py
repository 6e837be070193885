"""A file server on 127.0.0.1 that answers HTTP range requests (RFC 9110 §14) from a folder, the way object
stores and artifact servers do, and counts what it sends. Some path prefixes misbehave on purpose:

    /private/...   401 without credentials
    /busy/...      429 with Retry-After: 0 for the first request of each path, then normal answers
    /norange/...   200 with the whole file, ignoring Range
    /liar/...      claims the file is a terabyte long (Content-Range), then serves what it has
    /md5/...       gives every file one ETag, as an S3 ETag (the content's MD5) is for a colliding pair of files
    /untimed/...   sends no Last-Modified
"""

from __future__ import annotations

import email.utils
import hashlib
import re
from collections import Counter
from contextlib import AbstractContextManager
from pathlib import Path

from .loopback import LoopbackServer, QuietHandler, serving

_RANGE = re.compile(r"bytes=(\d+)-(\d+)$")


class RangeServer(LoopbackServer):
    def __init__(self, root: Path) -> None:
        super().__init__(_Handler)
        self.root = root
        self.sent: Counter[str] = Counter()  # body bytes sent per path
        self.busy_seen: set[str] = set()

    def url(self, name: str) -> str:
        return f"{self.endpoint}/{name}"


class _Handler(QuietHandler):
    server: RangeServer

    def do_GET(self) -> None:
        prefix, _, name = self.path.lstrip("/").partition("/")
        if prefix not in ("files", "private", "busy", "norange", "liar", "md5", "untimed"):
            self._status(404)
            return
        if prefix == "private" and self.headers.get("Authorization") is None:
            self._status(401)
            return
        if prefix == "busy":
            with self.server.lock:
                first = self.path not in self.server.busy_seen
                self.server.busy_seen.add(self.path)
            if first:
                self._status(429, {"Retry-After": "0"})
                return
        path = self.server.root / name
        if not name or not path.is_file():
            self._status(404)
            return
        size = path.stat().st_size
        match = _RANGE.match(self.headers.get("Range", ""))
        if prefix == "norange" or match is None:
            self._send(200, path.read_bytes(), {})
            return
        start, end = int(match.group(1)), min(int(match.group(2)), size - 1)
        if start >= size:
            self._status(416, {"Content-Range": f"bytes */{size}"})
            return
        with path.open("rb") as handle:  # only the range is read: objects may be many gigabytes
            handle.seek(start)
            body = handle.read(end + 1 - start)
        meta = path.stat()
        etag = '"' + hashlib.sha256(f"{meta.st_size}-{meta.st_mtime_ns}".encode()).hexdigest()[:16] + '"'
        total = 1 << 40 if prefix == "liar" else size
        headers = {"Content-Range": f"bytes {start}-{end}/{total}", "ETag": '"md5"' if prefix == "md5" else etag}
        if prefix != "untimed":
            headers["Last-Modified"] = email.utils.formatdate(meta.st_mtime, usegmt=True)
        self._send(206, body, headers)

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(key, value)
        self.end_headers()
        with self.server.lock:  # counted before it is sent: the client may read on before this thread runs again
            self.server.sent[self.path] += len(body)
        self.wfile.write(body)

    def _status(self, status: int, headers: dict[str, str] | None = None) -> None:
        self._send(status, b"", headers or {})


def range_server(root: Path) -> AbstractContextManager[RangeServer]:
    return serving(RangeServer(root))
