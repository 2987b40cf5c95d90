"""A TCP proxy that a test can cut and restore, to simulate a broker outage.

It runs its own asyncio loop in a daemon thread, so it keeps forwarding while the
test's loop is busy or blocked. ``cut()`` closes the listening socket and aborts every
live connection (both sides see a reset, new connections are refused: the broker is
gone); ``restore()`` listens again on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from stream.demo.embedded import free_port

__all__ = ["ProxyStats", "TcpProxy"]

T = TypeVar("T")


@dataclass
class ProxyStats:
    accepted: int = 0  # client connections accepted
    refused_upstream: int = 0  # clients dropped because the target refused
    cut_connections: int = 0  # live connections aborted by cut()
    bytes_up: int = 0  # client -> target
    bytes_down: int = 0  # target -> client


class TcpProxy:
    """Forwards ``127.0.0.1:port`` to ``127.0.0.1:target_port``."""

    def __init__(self, target_port: int, port: int | None = None) -> None:
        self.target_port = target_port
        self.port = port or free_port()
        self.stats = ProxyStats()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"tcp-proxy-{self.port}", daemon=True
        )
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def live_connections(self) -> int:
        return self._call(self._live())

    # ------------------------------------------------------------------ control
    def start(self) -> None:
        self._call(self._listen())

    def restore(self) -> None:
        self.start()

    def cut(self) -> int:
        """Stop listening and reset every live connection; returns how many were cut."""
        return self._call(self._cut())

    def close(self) -> None:
        if self._loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):
            self._call(self._cut())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()

    # ------------------------------------------------------------------ loop side
    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _live(self) -> int:
        return len(self._writers)

    async def _listen(self) -> None:
        if self._server is not None:
            return
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, reuse_address=True
        )

    async def _cut(self) -> int:
        if self._server is not None:
            self._server.close()
            self._server = None
        writers, self._writers = list(self._writers), set()
        for w in writers:
            w.transport.abort()
        self.stats.cut_connections += len(writers)
        await asyncio.sleep(0)  # let the pipes notice
        return len(writers)

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.stats.accepted += 1
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            self.stats.refused_upstream += 1
            client_w.transport.abort()
            return
        self._writers.update((client_w, up_w))
        try:
            await asyncio.gather(
                self._pipe(client_r, up_w, up=True),
                self._pipe(up_r, client_w, up=False),
            )
        finally:
            for w in (client_w, up_w):
                self._writers.discard(w)
                w.transport.abort()

    async def _pipe(self, r: asyncio.StreamReader, w: asyncio.StreamWriter, up: bool) -> None:
        try:
            while data := await r.read(65536):
                if up:
                    self.stats.bytes_up += len(data)
                else:
                    self.stats.bytes_down += len(data)
                w.write(data)
                await w.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            # one side ended: end the other too, like a real peer closing
            w.transport.abort()
