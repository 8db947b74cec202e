"""Child processes that cannot outlive us: the embedded broker, workers, receivers."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

_PR_SET_PDEATHSIG = 1


def die_with_parent_hook() -> Callable[[], None] | None:
    """A ``preexec_fn``: on Linux the kernel SIGTERMs the child when our thread dies.

    PDEATHSIG fires when the *thread* that forked exits, so it is only set from the main
    thread; a child started from a short-lived worker thread would otherwise die with it.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return None

    def set_pdeathsig() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return set_pdeathsig


def spawn_logged(
    args: Sequence[str],
    log: BinaryIO,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    new_session: bool = True,
) -> subprocess.Popen[bytes]:
    """A child writing stdout and stderr to ``log``, reading nothing, ending when we die.

    ``new_session``: its own session, so a Ctrl-C meant for us does not reach it first and we
    stop it in our own order (the worker before the broker it commits to).
    """
    return subprocess.Popen(
        list(args),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=dict(env) if env is not None else None,
        cwd=cwd,
        start_new_session=new_session,
        preexec_fn=die_with_parent_hook(),
    )


def terminate(process: subprocess.Popen[bytes], timeout: float) -> int:
    """SIGTERM (a clean shutdown), SIGKILL if it takes over ``timeout`` s; reaps; the exit code."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait()
    return int(process.returncode)
