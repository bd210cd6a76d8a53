"""A loopback TCP proxy that models one bandwidth-limited link (e.g. 100 Mbit/s each way).

Every connection shares the link: each direction is a serial pipe where a chunk of n bytes
occupies n / rate seconds after the previous chunk, so concurrent uploads split the bandwidth
as they would on one uplink. Bytes are counted per direction.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field

CHUNK_BYTES = 64 * 1024


@dataclass
class Pipe:
    """One direction of the link: a serial schedule at `rate_bps` bytes/s and a byte count."""

    rate_bps: float
    bytes: int = 0
    _free_at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def pass_through(self, n: int) -> None:
        """Wait until `n` more bytes have crossed the link."""
        with self._lock:
            start = max(time.monotonic(), self._free_at)
            self._free_at = start + n / self.rate_bps
            self.bytes += n
            done = self._free_at
        delay = done - time.monotonic()
        if delay > 0:
            time.sleep(delay)


class ThrottledProxy:
    """Listens on 127.0.0.1 and forwards every connection to `target` through the two pipes."""

    def __init__(self, target: tuple[str, int], mbit_s: float) -> None:
        rate = mbit_s * 1e6 / 8
        self.up = Pipe(rate)  # client -> server (what a turn uploads)
        self.down = Pipe(rate)
        self._target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT of the proxy."""
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self._target)
            for src, dst, pipe in ((client, server, self.up), (server, client, self.down)):
                threading.Thread(target=self._pump, args=(src, dst, pipe), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket, pipe: Pipe) -> None:
        try:
            while chunk := src.recv(CHUNK_BYTES):
                pipe.pass_through(len(chunk))
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Stop accepting (open connections end with their peers)."""
        self._stop.set()
        self._listener.close()
