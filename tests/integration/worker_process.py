"""A real `returnhook worker` in a subprocess, for end-to-end tests.

The worker runs exactly as an operator would start it (the console script, flags, environment),
through the same helper as the demo and the bench (``streams.processes.worker_process``).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from streams.processes.worker_process import WorkerError, clean_environment
from streams.processes.worker_process import WorkerProcess as _WorkerProcess

__all__ = ["RETURNHOOK", "TEST_RETRY_DELAYS", "WorkerError", "WorkerProcess", "_environment"]

#: The console script of the venv that runs the tests.
RETURNHOOK = Path(sys.executable).with_name("returnhook")
TEST_RETRY_DELAYS = "0.2,0.4,0.6"


class WorkerProcess(_WorkerProcess):
    """`returnhook worker --broker … --topics-file … --app-id … --without-web` in a subprocess.

    `broker=None` leaves `--broker` out (and `RETURNHOOK_BROKER` unset): the worker starts the
    embedded broker itself. `env` adds to (or, with a None value, removes from) the inherited
    environment, e.g. a tenant's secrets (`${ERP_TOKEN}` reads
    RETURNHOOK_SECRET_<TENANT>__ERP_TOKEN).
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
        super().__init__(
            f"worker {app_id}", [*args, *extra_args], log_path=log_path, env=_environment(env or {})
        )

    def wait_ready(self, timeout: float = 30.0) -> float:
        if self.log_level in {"warning", "error"}:
            raise WorkerError("wait_ready() reads INFO lines; start the worker at info or debug")
        return super().wait_ready(timeout)


def _environment(overrides: Mapping[str, str | None]) -> dict[str, str]:
    """The test's environment without any RETURNHOOK_* of the developer's shell, plus overrides.

    The receivers of the tests listen on loopback, which the egress policy refuses by default.
    Events of tenants without settings wait 2 s for them, not the default 10 s, so tests of
    `unknown_tenant` dead letters stay quick (tests of the wait itself set their own).
    """
    defaults = {"RETURNHOOK_EGRESS_ALLOW": "127.0.0.0/8", "RETURNHOOK_SETTINGS_GRACE_S": "2"}
    return clean_environment({**defaults, **overrides})
