"""CPU time and memory of a process from /proc (Linux), so the bench needs no psutil."""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuSample:
    pid: int
    cpu_s: float
    """user + system seconds of the process so far (its threads included)."""


def cpu_seconds(pid: int) -> float:
    """user + system CPU seconds of `pid` so far; 0.0 if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    # The command name (field 2) may hold spaces; the rest follows the last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / _TICKS


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) in KiB; empty if the process is gone."""
    out: dict[str, int] = {}
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        key, _, value = line.partition(":")
        if key in {"VmRSS", "VmHWM"}:
            out[key] = int(value.split()[0])
    return out


def reset_peak_rss(pid: int) -> bool:
    """Resets VmHWM to the current RSS (Linux ≥ 4.0, needs the right to write clear_refs)."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    return False


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot (everything but idle and iowait)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return 0.0
    values = [int(v) for v in fields[:8]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / _TICKS


class CpuMeter:
    """CPU seconds used by some processes between `start()` and `stop()`.

    `stop()` also reports `others`: what the rest of the machine used meanwhile (other
    people's test runs on a shared box show up here, and make throughput figures noisy).
    """

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = {name: pid for name, pid in pids.items() if pid}
        self._start: dict[str, float] = {}
        self._machine = 0.0
        self._started = 0.0
        self.window_s = 0.0
        self.used: dict[str, float] = {}

    def start(self) -> CpuMeter:
        self._start = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self._machine = machine_busy_seconds()
        self._started = time.monotonic()
        return self

    def stop(self) -> dict[str, float]:
        self.used = {
            name: round(cpu_seconds(pid) - self._start.get(name, 0.0), 3)
            for name, pid in self.pids.items()
        }
        machine = machine_busy_seconds() - self._machine
        self.used["others"] = round(max(0.0, machine - sum(self.used.values())), 3)
        self.window_s = round(time.monotonic() - self._started, 3)
        return self.used
