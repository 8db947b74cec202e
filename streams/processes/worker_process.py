"""A `returnhook worker` (or any long-running command) in a subprocess, with its log in a file.

One helper for everything that starts workers: the demo, the bench and the integration tests.
The log file is how the caller knows what happened: readiness, what was logged, and the tail of
it in every error, so a failure explains itself.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Self

from streams.processes.child_process import spawn_logged, terminate
from streams.processes.worker_log import worker_ready


class WorkerError(RuntimeError):
    """The worker did not become ready, or did not stop; the message ends with its log tail."""


def returnhook_command() -> list[str]:
    """The `returnhook` console script of this interpreter's venv, or the module if it is absent."""
    script = Path(sys.executable).with_name("returnhook")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-c", "from streams.cli.main import main; main()"]


def clean_environment(overrides: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """This process's environment without any RETURNHOOK_* of the caller's shell, plus overrides.

    A None value removes the variable. PYTHONUNBUFFERED makes log lines reach the file as they
    are written.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETURNHOOK_")}
    env["PYTHONUNBUFFERED"] = "1"
    for key, value in (overrides or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


class WorkerProcess:
    """`args` in a subprocess of its own session, stdout and stderr in `log_path`."""

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.args = list(args)
        self.log_path = Path(log_path)
        self.env = dict(env) if env is not None else clean_environment()
        self.cwd = cwd
        self._process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        if self._process is not None:
            raise WorkerError(f"{self.name} already started")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if self.cwd is not None:
            self.cwd.mkdir(parents=True, exist_ok=True)  # faust writes <app id>-data there
        with self.log_path.open("wb") as log:
            # Its own session: cleanup() can reach anything it started (an embedded broker), and
            # a Ctrl-C meant for the caller does not reach it first.
            self._process = spawn_logged(self.args, log, env=self.env, cwd=self.cwd)
        self.started_at = time.monotonic()
        return self

    def wait_ready(self, timeout: float = 30.0) -> float:
        """Blocks until the worker has its partitions and says it is ready; returns the seconds.

        Reads INFO lines, so the worker must log at info or debug. Raises WorkerError with the
        log tail when the process exits or the time runs out first.
        """
        process = self._require_started()
        deadline = time.monotonic() + timeout
        while True:
            if worker_ready(self.log_text()):
                return time.monotonic() - self.started_at
            if process.poll() is not None:
                raise WorkerError(
                    f"{self.name} exited with {process.returncode} before it was ready"
                    + self._tail_suffix()
                )
            if time.monotonic() >= deadline:
                raise WorkerError(
                    f"{self.name} not ready within {timeout:g} s" + self._tail_suffix()
                )
            time.sleep(0.05)

    def wait_for_log(self, pattern: str | re.Pattern[str], timeout: float = 20.0) -> re.Match[str]:
        """The first match of `pattern` (a regex) in the log; WorkerError with the tail if none."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        while True:
            found = regex.search(self.log_text())
            if found:
                return found
            if self._process is not None and self._process.poll() is not None:
                # One more read: the last lines may have landed after the check above.
                found = regex.search(self.log_text())
                if found:
                    return found
                raise WorkerError(
                    f"{self.name} exited with {self._process.returncode} before "
                    f"logging {regex.pattern!r}" + self._tail_suffix()
                )
            if time.monotonic() >= deadline:
                raise WorkerError(
                    f"{self.name} did not log {regex.pattern!r} within {timeout:g} s"
                    + self._tail_suffix()
                )
            time.sleep(0.05)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM (a graceful faust shutdown), then SIGKILL if it takes over `timeout` s."""
        process = self._process
        if process is None:
            return None
        terminate(process, timeout)
        return process.returncode

    def kill(self) -> int:
        """SIGKILL: a worker that dies without a chance to commit or say goodbye."""
        process = self._require_started()
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        process.wait()
        return int(process.returncode)

    def cleanup(self) -> None:
        """Stops the worker and anything it left behind in its process group."""
        if self._process is None:
            return
        self.stop()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, signal.SIGKILL)

    # --- inspection --------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        return self._require_started().pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self._process is None else self._process.poll()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def _tail_suffix(self) -> str:
        return f"; log {self.log_path}, last lines:\n{self.log_tail()}"

    def _require_started(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise WorkerError(f"{self.name} not started")
        return self._process

    def __repr__(self) -> str:
        state = "not started" if self._process is None else f"pid {self._process.pid}"
        return f"<{type(self).__name__} {self.name} {state}>"
