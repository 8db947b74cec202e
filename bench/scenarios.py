"""The bench run: ceilings, our worker, the naive step, on one broker, one receiver, one dataset.

Order of a run (nothing else of ours runs while a figure is measured):

1. embedded broker, receiver process, topics, tenant settings;
2. HTTP ceiling at 0 ms and 50 ms, Kafka ceiling;
3. our worker (one process for every scenario, warmed up first): 0 ms, 50 ms, slow tenant
   (alone, then mixed), failing tenant; each repeated `runs` times;
4. optionally, py-spy on our worker during extra 0 ms runs;
5. the peers: the naive faust step and the lean hand-written step (bench/lean.py), 0 ms and 50 ms.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bench import data as bench_data
from bench.ceilings import http_ceiling, kafka_ceiling, load_kafka_input
from bench.data import Event, TenantDirectory, fast_only, make_events, with_share
from bench.kafka import (
    OutcomeCollector,
    create_topic,
    create_topics,
    make_catalog,
    produce_burst,
    produce_paced,
)
from bench.procstat import CpuMeter, memory_kb, reset_peak_rss
from bench.receiver import ReceiverProcess
from bench.stats import latency_summary
from streams.kafka.embedded_broker import EmbeddedBroker
from streams.kafka.settings_file import publish_settings
from streams.ops.config import WorkerConfig
from streams.processes.ports import free_ports
from streams.processes.worker_process import WorkerProcess, clean_environment

REPO = Path(__file__).resolve().parents[1]
RETURNHOOK = Path(sys.executable).with_name("returnhook")


@dataclass(frozen=True)
class Mode:
    name: str
    runs: int
    burst_events: int
    """Events per run of the 0 ms and 50 ms scenarios (and the HTTP ceilings)."""
    failing_events: int
    paced_rate: float
    """Events/s offered in the slow-tenant runs (its 10 % must fit the slow host's capacity)."""
    paced_seconds: float
    naive_events_0: int
    """The same as burst_events, so burst latencies compare (they are mostly queueing)."""
    naive_events_50: int
    """Few: the naive step does ~19 events/s at 50 ms."""
    kafka_records: int
    warmup_events: int = 200
    profile_events: int = 8000


QUICK = Mode(
    "quick",
    runs=1,
    burst_events=3000,
    failing_events=3000,
    paced_rate=200,
    paced_seconds=10,
    naive_events_0=3000,
    naive_events_50=100,
    kafka_records=20000,
)
FULL = Mode(
    "full",
    runs=3,
    burst_events=8000,
    failing_events=4000,
    paced_rate=200,
    paced_seconds=20,
    naive_events_0=8000,
    naive_events_50=200,
    kafka_records=50000,
)

SCENARIOS = ("0ms", "50ms", "slow-tenant", "failing-tenant")
SLOW_SHARE = 0.10
FAILING_SHARE = 0.05


@dataclass
class Options:
    mode: Mode
    scenarios: Sequence[str] = SCENARIOS
    retry_delays: str = "1,5,15"
    worker_env: dict[str, str] = field(default_factory=dict)
    worker_src: Path | None = None
    """Run our worker from this source tree (PYTHONPATH) instead of the installed one."""
    naive: bool = True
    lean: bool = True
    ceilings: bool = True
    profile: bool = False
    hosts: int = 4
    workdir: Path | None = None
    label: str = ""


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Bench:
    def __init__(self, options: Options) -> None:
        self.o = options
        self.mode = options.mode
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.stamp = stamp
        self.dir = options.workdir or Path(f"/tmp/returnhook-bench-{stamp}-{uuid.uuid4().hex[:4]}")
        self.dir.mkdir(parents=True, exist_ok=True)
        config = _worker_config(options.worker_env)
        self.max_in_flight = config["max_in_flight"]
        self.max_in_flight_per_host = config["max_in_flight_per_host"]
        self.max_uncommitted = config["max_uncommitted"]
        self.results: dict[str, Any] = {
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "mode": self.mode.name,
            "label": options.label,
            "config": {
                "mode": asdict(self.mode),
                "retry_delays": options.retry_delays,
                "worker_env": options.worker_env,
                "worker_src": str(options.worker_src) if options.worker_src else None,
                "hosts": options.hosts,
                "max_in_flight": self.max_in_flight,
                "max_in_flight_per_host": self.max_in_flight_per_host,
                "max_uncommitted": self.max_uncommitted,
                "slow_share": SLOW_SHARE,
                "failing_share": FAILING_SHARE,
                "slow_delay_ms": bench_data.SLOW_DELAY_MS,
            },
            "environment": _environment(),
            "workdir": str(self.dir),
            "ceilings": {},
            "runs": [],
            "profile": None,
        }
        self.events_cache: dict[str, list[Event]] = {}

    # -- the whole run --------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        started = time.monotonic()
        log(f"mode {self.mode.name}; logs and topic files in {self.dir}")
        self.results["environment"]["loadavg_start"] = _loadavg()
        ports = free_ports(self.o.hosts + 2)
        fast_ports, slow_port, failing_port = ports[: self.o.hosts], ports[-2], ports[-1]
        with (
            EmbeddedBroker(log_path=self.dir / "broker.log") as broker,
            ReceiverProcess(ports, log_path=self.dir / "receiver.log") as receiver,
        ):
            self.broker = broker
            self.receiver = receiver
            self.bootstrap = broker.bootstrap
            self.tenants = TenantDirectory("http://127.0.0.1", fast_ports, slow_port, failing_port)
            log(f"broker {self.bootstrap} (pid {broker.pid}), receiver pid {receiver.pid}")
            if self.o.ceilings:
                await self.measure_ceilings()
            await self.measure_ours()
            if self.o.naive:
                await self.measure_peer(
                    "naive", {"0ms": self.mode.naive_events_0, "50ms": self.mode.naive_events_50}
                )
            if self.o.lean:
                n = self.mode.burst_events
                await self.measure_peer("lean", {"0ms": n, "50ms": n})
        self.results["environment"]["loadavg_end"] = _loadavg()
        self.results["elapsed_s"] = round(time.monotonic() - started, 1)
        return self.results

    # -- data -------------------------------------------------------------------------------------

    def events(self, scenario: str, n: int, run: int, system: str) -> list[Event]:
        """The same orders for every run and system of a scenario; fresh ids every time."""
        tag = f"{system}-{scenario}-r{run}-{uuid.uuid4().hex[:4]}"
        t = self.tenants
        pick: Callable[..., Any]
        if scenario == "0ms":
            pick = fast_only(t, 0)
        elif scenario == "50ms":
            pick = fast_only(t, 50)
        elif scenario == "slow-tenant":
            pick = with_share(t, t.slow, SLOW_SHARE)
        elif scenario == "failing-tenant":
            pick = with_share(t, t.failing, FAILING_SHARE)
        elif scenario == "warmup":
            pool = [*t.fast[0], *t.fast[50]]
            pick = lambda rng, i: pool[i % len(pool)]  # noqa: E731
        else:
            raise ValueError(scenario)
        return make_events(n, tag, pick, t, seed=f"{scenario}-{n}")

    # -- ceilings ---------------------------------------------------------------------------------

    async def measure_ceilings(self) -> None:
        ceilings: dict[str, list[dict[str, Any]]] = {"http_0ms": [], "http_50ms": [], "kafka": []}
        for run in range(self.mode.runs):
            for delay in (0, 50):
                events = self.events(f"{delay}ms", self.mode.burst_events, run, "http")
                meter = self._meter(None).start()
                result = await http_ceiling(
                    events,
                    max_in_flight=self.max_in_flight,
                    max_in_flight_per_host=self.max_in_flight_per_host,
                )
                result["cpu_s"] = meter.stop()
                result["window_s"] = meter.window_s
                result["cpu_s_per_1000"] = _per_1000(result["cpu_s"].get("bench"), len(events))
                result["latency_ms"] = latency_summary(result.pop("latencies_ms"))
                ceilings[f"http_{delay}ms"].append(result)
                log(f"HTTP ceiling {delay} ms run {run + 1}: {result['events_per_s']} req/s")
            events = self.events("0ms", self.mode.burst_events, run, "kafka")
            suffix = uuid.uuid4().hex[:6]
            in_topic, out_topic = f"bench-kafka-in-{suffix}", f"bench-kafka-out-{suffix}"
            await create_topic(self.bootstrap, in_topic)
            await create_topic(self.bootstrap, out_topic)
            await load_kafka_input(self.bootstrap, events, self.mode.kafka_records, in_topic)
            meter = self._meter(None).start()
            result = await kafka_ceiling(
                self.bootstrap,
                records=self.mode.kafka_records,
                in_topic=in_topic,
                out_topic=out_topic,
            )
            result["cpu_s"] = meter.stop()
            result["window_s"] = meter.window_s
            result["cpu_s_per_1000"] = _per_1000(result["cpu_s"].get("bench"), result["events"])
            ceilings["kafka"].append(result)
            log(f"Kafka ceiling run {run + 1}: {result['events_per_s']} records/s")
        self.results["ceilings"] = ceilings

    # -- our worker -------------------------------------------------------------------------------

    def _meter(self, worker: WorkerProcess | None) -> CpuMeter:
        pids = {"bench": os.getpid(), "receiver": self.receiver.pid, "broker": self.broker.pid}
        if worker is not None:
            pids["worker"] = worker.pid
        return CpuMeter(pids)

    async def _start_system(self, system: str) -> tuple[WorkerProcess, OutcomeCollector, Any]:
        catalog, topics_path = make_catalog(system, self.dir)
        await create_topics(self.bootstrap, catalog)
        app_id = f"bench-{system}-{uuid.uuid4().hex[:8]}"
        cwd = self.dir / system
        if system == "ours":
            await publish_settings(self.bootstrap, catalog.settings.name, self.tenants.settings())
            args = [
                str(RETURNHOOK),
                "worker",
                "--broker",
                self.bootstrap,
                "--topics-file",
                str(topics_path),
                "--app-id",
                app_id,
                "--without-web",
                "--log-level",
                "info",
                "--retry-delays",
                self.o.retry_delays,
            ]
            # The receiver is on loopback, which the worker's egress policy refuses by default.
            env = {"RETURNHOOK_EGRESS_ALLOW": "127.0.0.1/32", **self.o.worker_env}
            if self.o.worker_src:
                env["PYTHONPATH"] = str(self.o.worker_src)
        else:
            tenants_file = self.dir / "peer-tenants.json"
            tenants_file.write_bytes(
                orjson.dumps(
                    {
                        t.tenant_id: {
                            "url": t.url,
                            "step": self.tenants.step_json(t.tenant_id),
                            "headers": bench_data.tenant_headers(t.tenant_id),
                        }
                        for t in self.tenants.all()
                    }
                )
            )
            args = [
                sys.executable,
                "-m",
                f"bench.{system}",
                "--broker",
                self.bootstrap,
                "--topics-file",
                str(topics_path),
                "--app-id",
                app_id,
                "--tenants-file",
                str(tenants_file),
            ]
            if system == "lean":
                args += [
                    "--max-in-flight",
                    str(self.max_in_flight),
                    "--max-in-flight-per-host",
                    str(self.max_in_flight_per_host),
                ]
            env = {"PYTHONPATH": str(REPO)}
        worker = WorkerProcess(
            system,
            args,
            log_path=self.dir / f"{system}-worker.log",
            cwd=cwd,
            env=clean_environment(env),
        )
        worker.start()
        ready_s = await asyncio.to_thread(worker.wait_ready, 90.0)
        log(f"{system} worker pid {worker.pid} ready in {ready_s:.1f} s")
        collector = await OutcomeCollector(self.bootstrap, catalog.events.name).start()
        warm = self.events("warmup", self.mode.warmup_events, 0, system)
        sent = await produce_burst(self.bootstrap, catalog.input.name, warm)
        missing = await collector.wait_for(sent, 60)
        if missing:
            worker.stop()
            raise RuntimeError(
                f"{system}: {len(missing)} warm-up events never produced an outcome; "
                f"log {worker.log_path}:\n{worker.log_tail(30)}"
            )
        return worker, collector, catalog

    async def measure_ours(self) -> None:
        worker, collector, catalog = await self._start_system("ours")
        self.results["ours_worker_pid"] = worker.pid
        try:
            for scenario in self.o.scenarios:
                reset_peak_rss(worker.pid)
                for run in range(self.mode.runs):
                    if scenario == "slow-tenant":
                        for result in await self._slow_tenant(worker, collector, catalog, run):
                            self._record(result)
                    else:
                        n = (
                            self.mode.failing_events
                            if scenario == "failing-tenant"
                            else self.mode.burst_events
                        )
                        events = self.events(scenario, n, run, "ours")
                        result = await self._burst(
                            "ours", scenario, run, worker, collector, catalog, events
                        )
                        self._record(result)
            if self.o.profile:
                self.results["profile"] = await self._profile(worker, collector, catalog)
        finally:
            await collector.stop()
            worker.stop()
            self.results["ours_log"] = str(worker.log_path)
            self.results["ours_log_lines"] = _count_lines(worker.log_path)

    async def measure_peer(self, system: str, sizes: dict[str, int]) -> None:
        """A peer (the naive faust step, the lean step): the 0 ms and 50 ms bursts."""
        worker, collector, catalog = await self._start_system(system)
        try:
            for scenario, n in sizes.items():
                if scenario not in self.o.scenarios:
                    continue
                reset_peak_rss(worker.pid)
                for run in range(self.mode.runs):
                    events = self.events(scenario, n, run, system)
                    result = await self._burst(
                        system, scenario, run, worker, collector, catalog, events
                    )
                    self._record(result)
        finally:
            await collector.stop()
            worker.stop()

    def _record(self, result: dict[str, Any]) -> None:
        self.results["runs"].append(result)
        lat = result["latency_ms"]["all"]
        log(
            f"{result['system']:5} {result['scenario']:<20} run {result['run'] + 1}: "
            f"{result['events_per_s']} ev/s, p50 {lat['p50']} ms, p99 {lat['p99']} ms, "
            f"{result['cpu_s_per_1000']} CPU s/1000, peak RSS {result['peak_rss_mb']} MB"
            + (f", MISSING {result['missing']}" if result["missing"] else "")
        )

    async def _burst(
        self,
        system: str,
        scenario: str,
        run: int,
        worker: WorkerProcess,
        collector: OutcomeCollector,
        catalog: Any,
        events: list[Event],
    ) -> dict[str, Any]:
        timeout = 60 + len(events) / 50
        if scenario == "failing-tenant":
            delays = sum(float(d) for d in self.o.retry_delays.split(",") if d)
            timeout += delays * (2 + len(events) / self.max_uncommitted)
        meter = self._meter(worker).start()
        sent = await produce_burst(self.bootstrap, catalog.input.name, events)
        missing = await collector.wait_for(sent, timeout)
        cpu = meter.stop()
        result = self._summarize(
            system, scenario, run, worker, collector, events, sent, missing, cpu
        )
        result["window_s"] = meter.window_s
        return result

    async def _slow_tenant(
        self, worker: WorkerProcess, collector: OutcomeCollector, catalog: Any, run: int
    ) -> list[dict[str, Any]]:
        """The same fast events at the same moments, first alone, then with the slow tenant's."""
        n = int(self.mode.paced_rate * self.mode.paced_seconds)
        offsets = [i / self.mode.paced_rate for i in range(n)]
        results = []
        for variant in ("alone", "mixed"):
            events = self.events("slow-tenant", n, run, f"ours-{variant}")
            times = offsets
            if variant == "alone":
                kept = [(e, t) for e, t in zip(events, offsets, strict=True) if e.group == "fast"]
                events, times = [e for e, _ in kept], [t for _, t in kept]
            meter = self._meter(worker).start()
            sent = await produce_paced(self.bootstrap, catalog.input.name, events, times)
            missing = await collector.wait_for(sent, 60 + self.mode.paced_seconds)
            cpu = meter.stop()
            result = self._summarize(
                "ours", f"slow-tenant/{variant}", run, worker, collector, events, sent, missing, cpu
            )
            result["window_s"] = meter.window_s
            result["paced_rate"] = self.mode.paced_rate
            results.append(result)
        return results

    def _summarize(
        self,
        system: str,
        scenario: str,
        run: int,
        worker: WorkerProcess,
        collector: OutcomeCollector,
        events: list[Event],
        sent: dict[str, int],
        missing: set[str],
        cpu: dict[str, float],
    ) -> dict[str, Any]:
        outcomes = collector.outcomes
        done = [e for e in events if e.event_id in outcomes]
        latencies: dict[str, list[float]] = {"all": []}
        statuses: Counter[str] = Counter()
        out_ts = []
        group_ts: dict[str, list[int]] = {}
        for event in done:
            outcome = outcomes[event.event_id]
            value = outcome.timestamp_ms - sent[event.event_id]
            latencies["all"].append(value)
            latencies.setdefault(event.group, []).append(value)
            statuses[f"{event.group}:{outcome.action_status}"] += 1
            out_ts.append(outcome.timestamp_ms)
            group_ts.setdefault(event.group, []).append(outcome.timestamp_ms)
        self._dump_timeline(system, scenario, run, done, sent, outcomes)
        n = len(done)
        span_s = (max(out_ts) - min(out_ts)) / 1000 if n > 1 else None
        first_in = min(sent.values())
        wall_s = (max(out_ts) - first_in) / 1000 if n else None
        memory = memory_kb(worker.pid)
        result: dict[str, Any] = {
            "system": system,
            "scenario": scenario,
            "run": run,
            "events": len(events),
            "completed": n,
            "missing": len(missing),
            "events_per_s": round((n - 1) / span_s, 1) if span_s else None,
            "wall_events_per_s": round(n / wall_s, 1) if wall_s else None,
            "processing_span_s": round(span_s, 3) if span_s else None,
            "latency_ms": {k: latency_summary(v) for k, v in latencies.items()},
            "statuses": dict(statuses),
            "cpu_s": cpu,
            "cpu_s_per_1000": _per_1000(cpu.get("worker"), n),
            "peak_rss_mb": round(memory.get("VmHWM", 0) / 1024, 1),
            "rss_mb": round(memory.get("VmRSS", 0) / 1024, 1),
        }
        for group, stamps in group_ts.items():
            if group != "all" and len(stamps) > 1 and len(group_ts) > 1:
                spread = (max(stamps) - min(stamps)) / 1000
                result[f"{group}_events_per_s"] = round((len(stamps) - 1) / spread, 1)
        return result

    def _dump_timeline(
        self,
        system: str,
        scenario: str,
        run: int,
        done: list[Event],
        sent: dict[str, int],
        outcomes: dict[str, Any],
    ) -> None:
        """Per-event input/outcome timestamps as CSV in the work directory, for digging in."""
        name = f"timeline-{system}-{scenario.replace('/', '-')}-r{run}.csv"
        with (self.dir / name).open("w", encoding="utf-8") as out:
            out.write("event_id,order_id,tenant,group,input_ms,outcome_ms,read_ms,status\n")
            for e in done:
                o = outcomes[e.event_id]
                out.write(
                    f"{e.event_id},{e.order_id},{e.tenant_id},{e.group},{sent[e.event_id]},"
                    f"{o.timestamp_ms},{o.read_ms},{o.action_status}\n"
                )

    # -- profile ----------------------------------------------------------------------------------

    async def _profile(
        self, worker: WorkerProcess, collector: OutcomeCollector, catalog: Any
    ) -> dict[str, Any]:
        from bench.profile import summarize_collapsed

        py_spy = _py_spy()
        if py_spy is None:
            log("py-spy not installed (pip install py-spy): no profile")
            return {"error": "py-spy not installed"}
        results_dir = REPO / "bench" / "results"
        results_dir.mkdir(parents=True, exist_ok=True)
        outputs = {}
        summary: dict[str, Any] = {}
        for fmt in ("raw", "flamegraph"):
            suffix = "txt" if fmt == "raw" else "svg"
            out = results_dir / f"profile-0ms-{self.stamp}.{suffix}"
            args = [py_spy, "record", "--pid", str(worker.pid), "--rate", "200", "--format", fmt]
            args += ["--threads", "-o", str(out)] if fmt == "raw" else ["-o", str(out)]
            spy = _spawn_logged(args, self.dir / "py-spy.log")
            await asyncio.sleep(1.0)
            events = self.events("0ms", self.mode.profile_events, 0, f"profile-{fmt}")
            result = await self._burst(
                "ours", "0ms/profiled", 0, worker, collector, catalog, events
            )
            spy.send_signal(signal.SIGINT)
            await asyncio.to_thread(spy.wait, 60)
            outputs[fmt] = str(out)
            log(f"profiled 0 ms run ({fmt}): {result['events_per_s']} ev/s under py-spy -> {out}")
            if fmt == "raw" and out.exists():
                summary = summarize_collapsed(out.read_text())
                summary["events_per_s_under_profiler"] = result["events_per_s"]
                summary["cpu_s_per_1000_under_profiler"] = result["cpu_s_per_1000"]
        return {"files": outputs, **summary}


def _py_spy() -> str | None:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return found if Path(found).exists() else None


def _spawn_logged(args: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log_file:
        return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log_file)


def _per_1000(cpu_s: float | None, n: int) -> float | None:
    return round(cpu_s / n * 1000, 3) if cpu_s is not None and n else None


def _count_lines(path: Path) -> int:
    try:
        with path.open("rb") as f:
            return sum(1 for _ in f)
    except OSError:
        return 0


def _loadavg() -> list[float]:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


def _worker_config(env: dict[str, str]) -> dict[str, int]:
    """The worker's concurrency limits: WorkerConfig's defaults, or the bench's overrides."""
    fields = WorkerConfig.model_fields
    out = {}
    for name in ("max_in_flight", "max_in_flight_per_host", "max_uncommitted"):
        override = env.get(f"RETURNHOOK_{name.upper()}")
        out[name] = int(override) if override else int(fields[name].default)
    return out


def _environment() -> dict[str, Any]:
    from importlib.metadata import version

    def v(name: str) -> str | None:
        try:
            return version(name)
        except Exception:
            return None

    cpu_model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    git = {}
    try:
        git["commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "streams", "models"],
            cwd=REPO,
            capture_output=True,
            text=True,
        ).stdout
        git["streams_models_dirty"] = bool(status.strip())
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {p: v(p) for p in ("faust-streaming", "aiokafka", "aiohttp", "orjson")},
        "git": git,
    }


def dumps(results: dict[str, Any]) -> str:
    return json.dumps(results, indent=2, default=str)
