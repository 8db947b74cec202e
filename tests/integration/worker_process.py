"""A real `returnhook worker` in a subprocess, for end-to-end tests.

The worker runs exactly as an operator would start it (the console script, flags, environment),
with stdout and stderr in one log file that tests read: readiness, what was logged, and the
tail of it whenever something goes wrong.
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

from streams.child_process import spawn_logged, terminate
from streams.worker_log import worker_ready

#: The console script of the venv that runs the tests.
RETURNHOOK = Path(sys.executable).with_name("returnhook")
TEST_RETRY_DELAYS = "0.2,0.4,0.6"


class WorkerError(RuntimeError):
    """The worker did not become ready, or did not stop; the message ends with its log tail."""


class WorkerProcess:
    """`returnhook worker --broker … --topics-file … --app-id … --without-web` in a subprocess.

    `broker=None` leaves `--broker` out (and `RETURNHOOK_BROKER` unset): the worker starts the
    embedded broker itself. `env` adds to (or, with a None value, removes from) the inherited
    environment, e.g. the secrets that settings reference as `${ERP_TOKEN}`.
    """

    def __init__(
        self,
        *,
        broker: str | None,
        topics_file: Path,
        app_id: str,
        log_path: Path,
        retry_delays: str | None = TEST_RETRY_DELAYS,
        log_level: str | None = None,
        web: bool = False,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str | None] | None = None,
    ) -> None:
        self.broker = broker
        self.topics_file = Path(topics_file)
        self.app_id = app_id
        self.log_path = Path(log_path)
        self.log_level = log_level
        args = [str(RETURNHOOK), "worker"]
        if broker is not None:
            args += ["--broker", broker]
        args += ["--topics-file", str(self.topics_file), "--app-id", app_id]
        args.append("--web" if web else "--without-web")
        if retry_delays is not None:
            args += ["--retry-delays", retry_delays]
        if log_level is not None:
            args += ["--log-level", log_level]
        self.args = [*args, *extra_args]
        self.env = _environment(env or {})
        self._process: subprocess.Popen[bytes] | None = None
        self._started_at = 0.0

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        if self._process is not None:
            raise WorkerError(f"worker {self.app_id} already started")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            # Its own process group: cleanup() can then reach anything it started (the
            # embedded broker), and a Ctrl-C meant for pytest does not reach it first.
            self._process = spawn_logged(self.args, log, env=self.env)
        self._started_at = time.monotonic()
        return self

    def wait_ready(self, timeout: float = 30.0) -> float:
        """Blocks until the worker has its partitions and says it is ready; returns the seconds.

        Needs log level info or debug (the markers are INFO lines). Raises WorkerError with the
        log tail when the process exits or the time runs out first.
        """
        if self.log_level in {"warning", "error"}:
            raise WorkerError("wait_ready() reads INFO lines; start the worker at info or debug")
        process = self._require_started()
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_text()
            if worker_ready(text):
                return time.monotonic() - self._started_at
            if process.poll() is not None:
                raise WorkerError(
                    f"worker {self.app_id} exited with {process.returncode} before it was ready"
                    + self._tail_suffix()
                )
            if time.monotonic() >= deadline:
                raise WorkerError(
                    f"worker {self.app_id} not ready within {timeout:g} s" + self._tail_suffix()
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
                    f"worker {self.app_id} exited with {self._process.returncode} before "
                    f"logging {regex.pattern!r}" + self._tail_suffix()
                )
            if time.monotonic() >= deadline:
                raise WorkerError(
                    f"worker {self.app_id} did not log {regex.pattern!r} within {timeout:g} s"
                    + self._tail_suffix()
                )
            time.sleep(0.05)

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM (a graceful faust shutdown), then SIGKILL if it takes over `timeout` s."""
        process = self._process
        if process is None:
            raise WorkerError("worker not started")
        terminate(process, timeout)
        return int(process.returncode)

    def kill(self) -> int:
        """SIGKILL: a worker that dies without a chance to commit or say goodbye."""
        process = self._require_started()
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        process.wait()
        return int(process.returncode)

    def cleanup(self) -> None:
        """Stops the worker and anything it left behind in its process group (fixture teardown)."""
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
            raise WorkerError("worker not started")
        return self._process

    def __repr__(self) -> str:
        state = "not started" if self._process is None else f"pid {self._process.pid}"
        return f"<WorkerProcess {self.app_id} {state}>"


def _environment(overrides: Mapping[str, str | None]) -> dict[str, str]:
    """The test's environment without any RETURNHOOK_* of the developer's shell, plus overrides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETURNHOOK_")}
    env["PYTHONUNBUFFERED"] = "1"  # log lines reach the file as they are written
    # The receivers of the tests listen on loopback, which the egress policy refuses by default.
    env["RETURNHOOK_EGRESS_ALLOW"] = "127.0.0.0/8"
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env
