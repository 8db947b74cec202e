import os
import sys
import time
from pathlib import Path

from streams.processes.child_process import spawn_logged, terminate

SCRIPT = """
import os, sys
print("out", flush=True)
sys.stderr.write("err\\n")
print("stdin:", repr(sys.stdin.read()), "sid==pid:", os.getsid(0) == os.getpid(), flush=True)
print("cwd:", os.getcwd(), "env:", os.environ.get("CHILD_PROCESS_TEST"), flush=True)
"""


def test_spawn_logged_writes_both_streams_to_the_log_and_reads_nothing(tmp_path: Path) -> None:
    log_path = tmp_path / "child.log"
    with log_path.open("wb") as log:
        process = spawn_logged(
            [sys.executable, "-c", SCRIPT],
            log,
            env={**os.environ, "CHILD_PROCESS_TEST": "yes"},
            cwd=tmp_path,
        )
    assert process.wait(10) == 0
    text = log_path.read_text()
    assert "out" in text and "err" in text
    assert "stdin: '' sid==pid: True" in text  # DEVNULL, and a session of its own
    assert f"cwd: {tmp_path} env: yes" in text


def test_spawn_logged_can_share_our_session(tmp_path: Path) -> None:
    with (tmp_path / "child.log").open("wb") as log:
        process = spawn_logged([sys.executable, "-c", SCRIPT], log, new_session=False)
    assert process.wait(10) == 0
    assert "sid==pid: False" in (tmp_path / "child.log").read_text()


def test_terminate_stops_a_child_with_sigterm(tmp_path: Path) -> None:
    with (tmp_path / "child.log").open("wb") as log:
        process = spawn_logged([sys.executable, "-c", "import time; time.sleep(60)"], log)
    assert terminate(process, timeout=5) == -15  # SIGTERM was enough


def test_terminate_kills_a_child_that_ignores_sigterm(tmp_path: Path) -> None:
    script = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('up', flush=True); time.sleep(60)"
    )
    log_path = tmp_path / "child.log"
    with log_path.open("wb") as log:
        process = spawn_logged([sys.executable, "-c", script], log)
    for _ in range(200):
        if "up" in log_path.read_text():
            break
        time.sleep(0.02)
    assert terminate(process, timeout=0.5) == -9
