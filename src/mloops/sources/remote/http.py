"""``https://`` (and ``http://``) artifact URLs, read by HTTP range requests (RFC 9110 §14).

Only GET requests with a Range header are sent, to the URL the user named (redirects are followed as
urllib does). A server that ignores ranges is refused rather than downloaded whole: the point of a remote
scan is to read only what the verdict needs.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from email.message import Message
from typing import Any

from ... import __version__
from .interface import BLOCK, RemoteError

SCHEMES = ("http://", "https://")  # the URL prefixes this source reads
RETRIES = 3  # answers 429 or 503 are asked again, after the Retry-After the server gives (bounded below)
MAX_RETRY_AFTER = 30.0
DEFAULT_RETRY_AFTER = 1.0


class HttpObject:
    """One URL, its size learnt from the server, read by ranges."""

    def __init__(self, url: str, timeout: float, headers: dict[str, str] | None = None) -> None:
        self.uri = url
        self.timeout = timeout
        self.headers = {**(headers or {}), "User-Agent": f"mloops/{__version__}"}
        self.bytes_fetched = 0
        self.requests = 0
        # The first block tells the size (Content-Range) and is the first thing every format reads.
        self.head, answered = self._get(0, BLOCK)
        self.size = _total_size(url, answered, len(self.head))
        self.version = _version(answered)

    def read_range(self, start: int, length: int, /) -> bytes:
        if length <= 0:
            return b""
        data, _ = self._get(start, length)
        if len(data) != length:
            raise RemoteError(f"{self.uri}: the server sent {len(data)} bytes for a range of {length}")
        return data

    def _get(self, start: int, length: int) -> tuple[bytes, Message]:
        request = urllib.request.Request(
            self.uri, headers={**self.headers, "Range": f"bytes={start}-{start + length - 1}"}
        )
        try:
            status, data, headers = _fetch(request, self.timeout, length + 1)
        except urllib.error.HTTPError as error:
            if error.code == 416 and start == 0:  # an empty object has no byte 0
                return b"", error.headers
            raise RemoteError(f"{self.uri}: {_explain(error.code)} (HTTP {error.code})") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            raise _unreachable(self.uri, error) from None
        if status != 206:
            raise RemoteError(f"{self.uri}: the server does not serve byte ranges (HTTP {status})")
        self.requests += 1
        self.bytes_fetched += len(data)
        return data, headers


def _fetch(request: urllib.request.Request, timeout: float, limit: int) -> tuple[int, bytes, Message]:
    """One GET (status, at most ``limit`` bytes of body, headers), asked again after the Retry-After of an
    answer 429 or 503, ``RETRIES`` times at most; other errors are raised as urllib raises them."""
    for attempt in range(RETRIES + 1):
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                return answer.status, answer.read(limit), answer.headers
        except urllib.error.HTTPError as error:
            if error.code not in (429, 503) or attempt == RETRIES:
                raise
            time.sleep(_retry_after(error.headers.get("Retry-After")))
    raise AssertionError("unreachable")  # the loop returns or raises


def _unreachable(url: str, error: Exception) -> RemoteError:
    return RemoteError(f"{url}: unreachable ({getattr(error, 'reason', error)})")


def _version(answered: Message) -> str | None:
    """The ETag with the time of the last write: an ETag may be the content's MD5 (S3's), which whoever can write
    the object can collide, or the time and size (nginx's); both together change with every rewrite but one made
    within the same second. A server that tells no time gets no version, and nothing is kept."""
    tag, written = answered.get("ETag"), answered.get("Last-Modified")
    return f"{tag} {written}" if tag and written else None


def _total_size(url: str, headers: Message, received: int) -> int:
    """The object's size from ``Content-Range: bytes FIRST-LAST/SIZE``."""
    total = (headers.get("Content-Range") or "").rpartition("/")[2]
    if not total.isdigit():
        if received == 0:
            return 0
        raise RemoteError(f"{url}: the server gives no object size (Content-Range)")
    return int(total)


def _retry_after(value: str | None) -> float:
    try:
        return min(max(float(value or DEFAULT_RETRY_AFTER), 0.0), MAX_RETRY_AFTER)
    except ValueError:  # an HTTP date: wait the default
        return DEFAULT_RETRY_AFTER


def _explain(code: int) -> str:
    if code in (401, 403):
        return "the server asks for credentials or refuses them"
    if code == 404:
        return "not found"
    if code == 416:
        return "the object is shorter than the server said"
    if code in (429, 503):
        return f"still rate-limited after {RETRIES} retries"
    return "the server refused the request"


def open_object(uri: str, timeout: float) -> HttpObject:
    return HttpObject(uri, timeout)


def get_json(url: str, headers: dict[str, str], timeout: float, hint: str = "") -> tuple[Any, Message]:
    """A store API's JSON answer to a GET, and its headers, rate limits waited out as for ranges; a failure is
    one line (``hint`` follows a 401 or 403: which credentials the store reads)."""
    request = urllib.request.Request(url, headers={**headers, "User-Agent": f"mloops/{__version__}"})
    try:
        _, body, answered = _fetch(request, timeout, 64 << 20)
        return json.loads(body), answered
    except urllib.error.HTTPError as error:
        said = f"; {hint}" if hint and error.code in (401, 403) else ""
        raise RemoteError(f"{url}: {_explain(error.code)} (HTTP {error.code}){said}") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        raise _unreachable(url, error) from None
    except ValueError:
        raise RemoteError(f"{url}: an answer that is not JSON") from None
