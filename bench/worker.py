"""A worker (ours or the naive one) in a subprocess, started like an operator would."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from streams.child_process import spawn_logged, terminate
from streams.worker_log import worker_ready


class WorkerProcess:
    def __init__(
        self,
        name: str,
        args: Sequence[str],
        *,
        log_path: Path,
        cwd: Path,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.args = list(args)
        self.log_path = log_path
        self.cwd = cwd
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("RETURNHOOK_")}
        self.env["PYTHONUNBUFFERED"] = "1"
        self.env.update(env or {})
        self._process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> WorkerProcess:
        self.cwd.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            # cwd: faust writes its <app id>-data directory there
            self._process = spawn_logged(self.args, log, env=self.env, cwd=self.cwd)
        self.started_at = time.monotonic()
        return self

    def wait_ready(self, timeout: float = 60.0) -> float:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_text()
            if worker_ready(text):
                return time.monotonic() - self.started_at
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self._process.returncode}:\n{self.tail()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} not ready within {timeout:g} s:\n{self.tail()}")
            time.sleep(0.05)

    def stop(self, timeout: float = 15.0) -> None:
        process = self._process
        if process is None:
            return
        terminate(process, timeout)
        self._process = None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])
