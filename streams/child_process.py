"""Child processes that cannot outlive us: the embedded broker, the demo's worker."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
from collections.abc import Callable

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
