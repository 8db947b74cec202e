"""A TLS-terminating TCP proxy in front of the embedded broker (which cannot terminate TLS).

It runs its own event loop in a thread, so synchronous tests and subprocesses (workers, CLI
commands) can use it alike. Every accepted connection does a real TLS handshake with the proxy's
`ssl.SSLContext` (server certificate, and a required client certificate for mutual TLS), then
bytes are piped both ways to the broker. The broker advertises the proxy's address, so the
connections clients open after bootstrap come through here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from types import TracebackType
from typing import Self


class TlsProxy:
    def __init__(
        self,
        *,
        listen_port: int,
        upstream_port: int,
        context: ssl.SSLContext,
        host: str = "127.0.0.1",
    ) -> None:
        self.host = host
        self.listen_port = listen_port
        self.upstream_port = upstream_port
        self.context = context
        self.handshakes_failed = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    def start(self) -> Self:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._serve(), self._loop)
        self._server = future.result(timeout=10)
        return self

    def stop(self) -> None:
        if self._server is not None:
            asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def _serve(self) -> asyncio.Server:
        return await asyncio.start_server(
            self._handle, self.host, self.listen_port, ssl=self.context, ssl_handshake_timeout=5
        )

    async def _close(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            broker_r, broker_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(
            _pipe(client_r, broker_w), _pipe(broker_r, client_w), return_exceptions=True
        )


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except (OSError, ssl.SSLError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()
