"""The only code that sends anything over the network: read-only requests with bounded cost.

Every request is GET, HEAD or OPTIONS (checked again here, whatever the caller passes), carries no body and
no credentials, ignores proxy settings from the environment (traffic goes to the named target and nowhere
else), follows no redirect, and reads at most MAX_BODY bytes of the answer.
"""

from __future__ import annotations

import asyncio
from typing import NamedTuple

import httpx

from .. import __version__
from .fingerprints import SAFE_METHODS, Request, Response

MAX_BODY = 256 * 1024  # fingerprints look at the first bytes of a page or a JSON answer
USER_AGENT = f"mloops/{__version__} (read-only probe)"


class Failure(NamedTuple):
    """Why no HTTP answer came back."""

    reason: str


class Client:
    """Shared by every endpoint of one probe run; ``concurrency`` bounds requests in flight."""

    def __init__(self, timeout: float, concurrency: int) -> None:
        self._semaphore = asyncio.Semaphore(concurrency)
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            verify=False,  # internal platforms often use self-signed certificates; nothing is sent that needs trust
            trust_env=False,
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            # identity: answers arrive uncompressed, so no decompression bomb can cost more than MAX_BODY
            headers={"User-Agent": USER_AGENT, "Accept": "*/*", "Accept-Encoding": "identity"},
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def fetch(self, base: str, request: Request) -> Response | Failure:
        """The answer to ``request`` at ``base`` (scheme://host:port), retried once after a read timeout or a
        broken read; a refused or unanswered connection is not retried (sweeps meet thousands of them)."""
        if request.method not in SAFE_METHODS:
            raise ValueError(f"refusing to send {request.method}: probes are read-only")
        url = base.rstrip("/") + request.path
        for attempt in (1, 2):
            try:
                async with self._semaphore:
                    return await self._read(request, url)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:  # nothing listens, or a firewall drops it
                return Failure(f"connection failed: {_reason(exc)}")
            except (httpx.TimeoutException, httpx.ReadError, httpx.RemoteProtocolError) as exc:
                if attempt == 2:
                    return Failure(f"{type(exc).__name__}: {_reason(exc)}")
            except httpx.HTTPError as exc:
                return Failure(f"{type(exc).__name__}: {_reason(exc)}")
        raise AssertionError("unreachable")

    async def _read(self, request: Request, url: str) -> Response:
        async with self._http.stream(request.method, url, headers=dict(request.headers)) as answer:
            chunks: list[bytes] = []
            size = 0
            async for chunk in answer.aiter_raw():
                chunks.append(chunk)
                size += len(chunk)
                if size >= MAX_BODY:
                    break
            raw = b"".join(chunks)[:MAX_BODY]
            headers = {name.lower(): value for name, value in answer.headers.items()}
            return Response(answer.status_code, headers, raw.decode("utf-8", "replace"))


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__
