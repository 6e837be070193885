"""A TCP relay on 127.0.0.1 that counts the bytes a server sends back: what a client really downloaded,
headers and all, measured outside the client."""

from __future__ import annotations

import socket
import socketserver
import threading
from contextlib import AbstractContextManager

from .loopback import serving


class MeteredRelay(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, target_port: int) -> None:
        super().__init__(("127.0.0.1", 0), _Relay)
        self.target_port = target_port
        self.lock = threading.Lock()
        self.downstream = 0  # bytes the server sent to clients through the relay

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Relay(socketserver.BaseRequestHandler):
    server: MeteredRelay

    def handle(self) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.server.target_port))
        sending = threading.Thread(target=_pump, args=(self.request, upstream, None), daemon=True)
        sending.start()
        _pump(upstream, self.request, self.server)
        sending.join(timeout=5)
        upstream.close()


def _pump(source: socket.socket, sink: socket.socket, meter: MeteredRelay | None) -> None:
    try:
        while data := source.recv(1 << 16):
            sink.sendall(data)
            if meter is not None:
                with meter.lock:
                    meter.downstream += len(data)
    except OSError:
        pass
    finally:
        try:
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def metered(target_port: int) -> AbstractContextManager[MeteredRelay]:
    return serving(MeteredRelay(target_port))
