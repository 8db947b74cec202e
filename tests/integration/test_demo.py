"""`returnhook demo` (what `make run` runs) end to end, as a user would start it.

It brings its own broker, receiver and worker, so this test needs no fixture; it checks that the
printed tables show each scenario's outcome and that nothing the demo started is left running.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 120
MAX_WALL_S = 90  # `make run` should take well under a minute; this only catches a hang


def returnhook_command() -> list[str]:
    script = Path(sys.executable).with_name("returnhook")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from streams.cli.main import main; main()"]


def table_rows(output: str, title: str) -> dict[str, list[str]]:
    """The first line of each row of the table printed under `title`, as cells, by order id."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == title)
    rows: dict[str, list[str]] = {}
    for line in lines[start + 1 :]:
        if line.startswith("└"):
            break
        cells = [cell.strip() for cell in line.strip().strip("│").split("│")]
        if cells and cells[0].startswith("ORD-"):
            rows[cells[0]] = cells
    return rows


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "zombie" not in status


def processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline:
            found.append(int(entry.name))
    return found


def test_demo_shows_every_scenario_and_cleans_up() -> None:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
    env.pop("RETURNHOOK_BROKER", None)
    started = time.monotonic()
    result = subprocess.run(
        [*returnhook_command(), "demo"],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    wall = time.monotonic() - started
    output = result.stdout
    print(output)
    print(result.stderr, file=sys.stderr)
    print(f"`returnhook demo` wall time: {wall:.1f} s")

    assert result.returncode == 0, f"demo exited {result.returncode}:\n{output}\n{result.stderr}"
    assert "demo ok" in output
    assert "retry delays 0.5, 1, 2 s" in output
    assert wall < MAX_WALL_S

    events = table_rows(output, "order-events")
    # columns: order, scenario, step, actionStatus, attempts, HTTP, continue?, reason
    accept, enrich, reject, flaky, missing = (events[f"ORD-100{n}"][3:8] for n in range(1, 6))
    assert accept[:4] == ["Success", "1", "200", "yes"]
    assert enrich[:4] == ["Success", "1", "200", "yes"]
    assert reject[:4] == ["Error", "1", "200", "no"]
    assert "Return window expired" in reject[4] and "skipped" in reject[4]
    assert flaky[:4] == ["Success", "2", "200", "yes"]
    assert missing[:4] == ["Warning", "1", "404", "yes"]
    assert "404" in missing[4]
    assert "ORD-1006" not in events

    patches = table_rows(output, "order-patches")
    assert set(patches) == {"ORD-1002", "ORD-1003", "ORD-1004", "ORD-1005"}
    assert "+erp-synced" in patches["ORD-1002"][2]
    assert "ErpReturnId=RMA-R-1002-1" in patches["ORD-1002"][2]
    assert "ReturnRejected" in patches["ORD-1003"][2]
    assert "cleared 1 earlier" in patches["ORD-1004"][2]
    assert "+Warning entry" in patches["ORD-1005"][2]
    assert "nothing for ORD-1006 (Shipped, not a return)" in output

    # Everything it started is gone: the worker, the broker, and nothing of its group remains.
    pids = [int(p) for p in re.findall(r"stopped (?:worker|embedded broker) \(pid (\d+)", output)]
    assert len(pids) == 2, output
    assert not [pid for pid in pids if alive(pid)]
    group = re.search(r"group (returnhook-demo-[0-9a-f]+)", output)
    assert group is not None
    assert processes_mentioning(group.group(1)) == []
