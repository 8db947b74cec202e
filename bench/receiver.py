"""The webhook receiver the bench posts to: latency and status are part of the path.

``POST /hook/{delay_ms}/{status}/{tenant}`` reads the whole body, waits ``delay_ms``, and answers
``status``: on 2xx a one-result ``OmniumOrderWorkflowExecutionPatchResult`` (Success, no patch),
otherwise a short text. Keeping the behaviour in the URL lets every scenario's tenant settings
say what their endpoint does, with no shared state to switch between scenarios.

It runs in its own process by default (``ReceiverProcess``), listening on several ports: a
webhook's origin (scheme://host:port) is what the worker's per-host limit keys on, so tenants
spread over ports behave like tenants with their own ERP hosts.

    python -m bench.receiver --ports 18001,18002
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
from aiohttp import web

from streams.processes.child_process import spawn_logged
from streams.processes.ports import accepts

SUCCESS_BODY = orjson.dumps(
    {
        "orderActionExecutionResults": [
            {"actionStatus": "Success", "cancelWorkflow": False, "errorReason": None}
        ]
    }
)
_COUNTS = web.AppKey("counts", Counter)


async def hook(request: web.Request) -> web.Response:
    body = await request.read()
    delay_ms = int(request.match_info["delay"])
    status = int(request.match_info["status"])
    counts = request.app[_COUNTS]
    counts[f"{delay_ms}/{status}"] += 1
    counts["bytes_in"] += len(body)
    if delay_ms:
        await asyncio.sleep(delay_ms / 1000)
    if 200 <= status < 300:
        return web.Response(status=status, body=SUCCESS_BODY, content_type="application/json")
    return web.Response(status=status, text=f"bench receiver answers {status}")


async def stats(request: web.Request) -> web.Response:
    return web.json_response(dict(request.app[_COUNTS]))


def make_app() -> web.Application:
    app = web.Application(client_max_size=8 * 1024 * 1024)
    app[_COUNTS] = Counter()
    app.router.add_post("/hook/{delay:\\d+}/{status:\\d+}/{tenant}", hook)
    app.router.add_get("/stats", stats)
    return app


async def serve(host: str, ports: list[int]) -> web.AppRunner:
    """Starts one app on every port (in this process); `await runner.cleanup()` to stop."""
    runner = web.AppRunner(make_app(), access_log=None, handle_signals=False)
    await runner.setup()
    for port in ports:
        await web.TCPSite(runner, host, port, backlog=1024, reuse_address=True).start()
    return runner


class ReceiverProcess:
    """`python -m bench.receiver` in a subprocess, so it never shares a GIL with the measuring."""

    def __init__(self, ports: list[int], *, host: str = "127.0.0.1", log_path: Path) -> None:
        self.host = host
        self.ports = ports
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def url(self, port: int) -> str:
        return f"http://{self.host}:{port}"

    def start(self, timeout: float = 15.0) -> ReceiverProcess:
        args = [sys.executable, "-m", "bench.receiver", "--host", self.host, "--ports"]
        args.append(",".join(map(str, self.ports)))
        with self.log_path.open("wb") as log:
            self._process = spawn_logged(
                args,
                log,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                cwd=Path(__file__).resolve().parents[1],
                new_session=False,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"receiver exited early: {self.log_path.read_text()[-2000:]}")
            if all(accepts(self.host, port) for port in self.ports):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"receiver not listening within {timeout:g} s")

    def stop(self) -> None:
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._process = None

    def __enter__(self) -> ReceiverProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def _main(host: str, ports: list[int]) -> None:
    runner = await serve(host, ports)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"bench receiver on {host} ports {ports}", flush=True)
    try:
        await stop.wait()
    finally:
        with contextlib.suppress(Exception):
            await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--ports", required=True, help="comma-separated ports")
    args = parser.parse_args()
    asyncio.run(_main(args.host, [int(p) for p in args.ports.split(",") if p]))


if __name__ == "__main__":
    main()
