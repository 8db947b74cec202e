"""Figures, ratios and targets from a bench run: JSON file, Markdown table, PNG chart.

python -m bench.report bench/results/run-<stamp>-quick.json   # re-print and re-chart a run
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench.stats import median

RESULTS = Path(__file__).resolve().parent / "results"
TARGETS = {
    "0ms_cpu_vs_floor": ("<=", 3.0),
    "50ms_cpu_vs_floor": ("<=", 3.0),
    "0ms_vs_ceiling": (">=", 0.7),
    "50ms_vs_bound": (">=", 0.8),
    "50ms_vs_naive": (">=", 50.0),
    "slow_tenant_fast_p99_ratio": ("<=", 1.5),
}


def aggregate(results: dict[str, Any]) -> dict[str, Any]:
    """Medians over runs per (system, scenario), the ceilings, and the ratios with targets."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for run in results.get("runs", []):
        groups.setdefault(f"{run['system']}:{run['scenario']}", []).append(run)
    figures: dict[str, Any] = {}
    for key, runs in groups.items():
        latency_groups = {g for r in runs for g in r["latency_ms"]}
        figures[key] = {
            "runs": len(runs),
            "events": runs[0]["events"],
            "missing": sum(r["missing"] for r in runs),
            "events_per_s": median([r["events_per_s"] for r in runs]),
            "events_per_s_all_runs": [r["events_per_s"] for r in runs],
            "wall_events_per_s": median([r.get("wall_events_per_s") for r in runs]),
            "cpu_s_per_1000": median([r["cpu_s_per_1000"] for r in runs]),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
            "latency_ms": {
                g: {
                    q: median([r["latency_ms"].get(g, {}).get(q) for r in runs])
                    for q in ("p50", "p90", "p99", "max")
                }
                for g in sorted(latency_groups)
            },
            **{
                k: median([r.get(k) for r in runs])
                for k in ("fast_events_per_s", "failing_events_per_s", "slow_events_per_s")
                if any(r.get(k) is not None for r in runs)
            },
        }
    ceilings = {}
    for name, runs in results.get("ceilings", {}).items():
        if runs:
            ceilings[name] = {
                "events_per_s": median([r["events_per_s"] for r in runs]),
                "events_per_s_all_runs": [r["events_per_s"] for r in runs],
                "latency_ms": {
                    q: median([r.get("latency_ms", {}).get(q) for r in runs])
                    for q in ("p50", "p99")
                },
                "cpu_s_per_1000": median([r.get("cpu_s_per_1000") for r in runs]),
            }
    config = results.get("config", {})
    in_flight = min(
        config.get("max_in_flight", 256),
        config.get("max_in_flight_per_host", 64) * config.get("hosts", 4),
    )
    bound_50 = in_flight / 0.050

    def eps(key: str) -> float | None:
        return (figures.get(key) or {}).get("events_per_s")

    def ceil(key: str) -> float | None:
        return (ceilings.get(key) or {}).get("events_per_s")

    def ratio(a: float | None, b: float | None) -> float | None:
        return round(a / b, 3) if a is not None and b else None

    def lowest(*values: float | None) -> float | None:
        present = [v for v in values if v is not None]
        return min(present) if present else None

    def cpu(key: str) -> float | None:
        return (ceilings.get(key) or {}).get("cpu_s_per_1000")

    # The floor: what the libraries alone spend per event, from this run's bare pipes.
    kafka_cpu = cpu("kafka")
    floor = {
        delay: round(http + kafka_cpu, 4) if http is not None and kafka_cpu is not None else None
        for delay, http in (("0ms", cpu("http_0ms")), ("50ms", cpu("http_50ms")))
    }
    for key, fig in figures.items():
        scenario = key.split(":", 1)[1]
        fig["cpu_vs_floor"] = ratio(fig["cpu_s_per_1000"], floor.get(scenario, floor["0ms"]))

    def vs_floor(key: str) -> float | None:
        return (figures.get(key) or {}).get("cpu_vs_floor")

    ceiling_0 = lowest(ceil("http_0ms"), ceil("kafka"))
    bound_50_all = lowest(bound_50, ceil("http_50ms"), ceil("kafka"))
    alone = (figures.get("ours:slow-tenant/alone") or {}).get("latency_ms", {}).get("fast", {})
    mixed = (figures.get("ours:slow-tenant/mixed") or {}).get("latency_ms", {}).get("fast", {})
    ratios = {
        "0ms_vs_ceiling": ratio(eps("ours:0ms"), ceiling_0),
        "50ms_vs_bound": ratio(eps("ours:50ms"), bound_50_all),
        "50ms_vs_naive": ratio(eps("ours:50ms"), eps("naive:50ms")),
        "slow_tenant_fast_p99_ratio": ratio(mixed.get("p99"), alone.get("p99")),
        "0ms_vs_naive": ratio(eps("ours:0ms"), eps("naive:0ms")),
        "0ms_cpu_vs_floor": vs_floor("ours:0ms"),
        "50ms_cpu_vs_floor": vs_floor("ours:50ms"),
        "0ms_lean_cpu_vs_floor": vs_floor("lean:0ms"),
        "50ms_lean_cpu_vs_floor": vs_floor("lean:50ms"),
        "50ms_vs_lean": ratio(eps("ours:50ms"), eps("lean:50ms")),
    }
    verdicts = {}
    for name, (op, target) in TARGETS.items():
        value = ratios.get(name)
        met = None if value is None else (value >= target if op == ">=" else value <= target)
        verdicts[name] = {"value": value, "target": f"{op} {target:g}", "met": met}
    return {
        "figures": figures,
        "ceilings": ceilings,
        "bounds": {
            "in_flight": in_flight,
            "in_flight_over_50ms": bound_50,
            "ceiling_0ms": ceiling_0,
            "bound_50ms": bound_50_all,
            "cpu_floor_s_per_1000": floor,
        },
        "ratios": ratios,
        "targets": verdicts,
    }


def _f(value: Any, digits: int = 0) -> str:
    if value is None:
        return "–"
    if isinstance(value, float | int):
        return f"{value:,.{digits}f}"
    return str(value)


def markdown(results: dict[str, Any], summary: dict[str, Any]) -> str:
    figures, ceilings, bounds = summary["figures"], summary["ceilings"], summary["bounds"]
    runs = results.get("config", {}).get("mode", {}).get("runs", 1)
    rows: list[tuple[str, ...]] = []

    def fig_row(label: str, system: str, key: str, group: str = "all", note: str = "") -> None:
        f = figures.get(key)
        if not f:
            return
        lat = f["latency_ms"].get(group, {})
        rate = f.get(f"{group}_events_per_s") if group != "all" else None
        if rate is None and (group == "all" or set(f["latency_ms"]) <= {"all", group}):
            rate = f["events_per_s"]
        if f.get("missing"):
            note = (note + "; " if note else "") + f"{f['missing']} missing"
        rows.append(
            (
                label,
                system,
                _f(rate),
                _f(lat.get("p50")),
                _f(lat.get("p99")),
                _f(f["cpu_s_per_1000"], 2) if group == "all" else "",
                _f(f.get("cpu_vs_floor"), 1) if group == "all" else "",
                _f(f["peak_rss_mb"], 0) if group == "all" else "",
                note,
            )
        )

    def ceiling_row(label: str, system: str, key: str, note: str) -> None:
        c = ceilings.get(key)
        if not c:
            return
        lat = c.get("latency_ms", {})
        rows.append(
            (
                label,
                system,
                _f(c["events_per_s"]),
                _f(lat.get("p50")),
                _f(lat.get("p99")),
                _f(c.get("cpu_s_per_1000"), 2),
                "",
                "",
                note,
            )
        )

    fig_row("0 ms", "**ours**", "ours:0ms")
    fig_row("0 ms", "naive", "naive:0ms", note="faust agent, one awaited call per event")
    fig_row("0 ms", "lean", "lean:0ms", note="aiokafka getmany + gathered calls, no order")
    ceiling_row("0 ms", "HTTP ceiling", "http_0ms", "bare aiohttp, request latency, client CPU")
    ceiling_row("0 ms", "Kafka ceiling", "kafka", "bare aiokafka consume→produce")
    fig_row("50 ms", "**ours**", "ours:50ms")
    fig_row("50 ms", "naive", "naive:50ms")
    fig_row("50 ms", "lean", "lean:50ms")
    ceiling_row("50 ms", "HTTP ceiling", "http_50ms", "bare aiohttp, request latency, client CPU")
    rows.append(
        (
            "50 ms",
            "in-flight ÷ latency",
            _f(bounds["in_flight_over_50ms"]),
            "",
            "",
            "",
            "",
            "",
            f"{bounds['in_flight']} in flight / 50 ms",
        )
    )
    fig_row("slow tenant, alone", "ours, fast", "ours:slow-tenant/alone", "fast", "paced")
    fig_row("slow tenant, mixed", "ours, fast", "ours:slow-tenant/mixed", "fast", "paced")
    fig_row("slow tenant, mixed", "ours, slow (2 s)", "ours:slow-tenant/mixed", "slow", "paced")
    fig_row("slow tenant, mixed", "ours, all", "ours:slow-tenant/mixed", "all", "paced")
    fig_row("failing tenant", "ours, all", "ours:failing-tenant")
    fig_row("failing tenant", "ours, fast", "ours:failing-tenant", "fast")
    fig_row("failing tenant", "ours, failing (500)", "ours:failing-tenant", "failing")
    header = (
        "| scenario | system | events/s | p50 ms | p99 ms | CPU s / 1000 ev | × floor "
        "| peak RSS MB | note |\n|---|---|---:|---:|---:|---:|---:|---:|---|"
    )
    lines = [
        f"### returnhook bench, {results.get('mode')} mode "
        f"({'median of ' + str(runs) + ' runs' if runs > 1 else '1 run'}), "
        f"{results.get('started_at', '')}",
        "",
        header,
        *("| " + " | ".join(row) + " |" for row in rows),
        "",
        "| ratio | value | target | met |",
        "|---|---:|---|---|",
    ]
    names = {
        "0ms_cpu_vs_floor": "0 ms: ours, CPU per event / floor",
        "50ms_cpu_vs_floor": "50 ms: ours, CPU per event / floor",
        "0ms_vs_ceiling": "0 ms: ours / min(HTTP ceiling, Kafka ceiling)",
        "50ms_vs_bound": "50 ms: ours / min(in-flight ÷ latency, ceilings)",
        "50ms_vs_naive": "50 ms: ours / naive",
        "slow_tenant_fast_p99_ratio": "slow tenant: fast p99 mixed / alone",
    }
    for name, verdict in summary["targets"].items():
        met = {True: "yes", False: "**no**", None: "–"}[verdict["met"]]
        lines.append(f"| {names[name]} | {_f(verdict['value'], 2)} | {verdict['target']} | {met} |")
    for name, label in (
        ("0ms_vs_naive", "0 ms: ours / naive"),
        ("50ms_vs_lean", "50 ms: ours / lean"),
        ("0ms_lean_cpu_vs_floor", "0 ms: lean, CPU per event / floor"),
        ("50ms_lean_cpu_vs_floor", "50 ms: lean, CPU per event / floor"),
    ):
        extra = summary["ratios"].get(name)
        if extra is not None:
            lines.append(f"| {label} (no target) | {_f(extra, 2)} | – | – |")
    floor = bounds.get("cpu_floor_s_per_1000") or {}
    if any(v is not None for v in floor.values()):
        lines += [
            "",
            "× floor: the system's CPU per event ÷ (the bare aiohttp client's CPU per request + "
            "the bare Kafka pipe's CPU per record), both from this run: "
            f"{_f(floor.get('0ms'), 3)} s / 1000 at 0 ms, {_f(floor.get('50ms'), 3)} at 50 ms "
            "(the HTTP ceiling at that latency); other scenarios use the 0 ms floor.",
        ]
    env = results.get("environment", {})
    busy = [
        r["cpu_s"]["others"] / r["window_s"]
        for r in results.get("runs", [])
        if r.get("window_s") and "others" in r.get("cpu_s", {})
    ]
    if busy:
        lines += [
            "",
            f"Other processes on the machine used {min(busy):.2f}–{max(busy):.2f} cores "
            "during our runs (median "
            f"{median(busy):.2f}); above ~0.2 the absolute figures are noisy, the CPU s / 1000 "
            "events less so.",
        ]
    lines += [
        "",
        f"{env.get('cpus')} CPUs ({env.get('cpu_model')}), Python {env.get('python')}, "
        f"load average {env.get('loadavg_start')} → {env.get('loadavg_end')}; "
        f"worker env {results.get('config', {}).get('worker_env') or '{}'}; "
        f"retry delays {results.get('config', {}).get('retry_delays')}.",
    ]
    return "\n".join(lines)


def chart(results: dict[str, Any], summary: dict[str, Any], path: Path) -> Path | None:
    """events/s and latency per scenario; None (and a note) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed (pip install -e '.[bench]'): no chart", file=sys.stderr)
        return None
    figures, ceilings, bounds = summary["figures"], summary["ceilings"], summary["bounds"]

    def eps(key: str, field: str = "events_per_s") -> float:
        return float((figures.get(key) or {}).get(field) or 0)

    def ceil(key: str) -> float:
        return float((ceilings.get(key) or {}).get("events_per_s") or 0)

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.2))
    groups = ["0 ms", "50 ms"]
    series = [
        ("ours", [eps("ours:0ms"), eps("ours:50ms")], "#1f77b4"),
        ("naive step", [eps("naive:0ms"), eps("naive:50ms")], "#d62728"),
        ("lean step", [eps("lean:0ms"), eps("lean:50ms")], "#2ca02c"),
        ("HTTP ceiling", [ceil("http_0ms"), ceil("http_50ms")], "#7f7f7f"),
        ("Kafka ceiling", [ceil("kafka"), ceil("kafka")], "#bcbd22"),
        ("in-flight ÷ latency", [0, bounds["in_flight_over_50ms"]], "#17becf"),
    ]
    width = 0.13
    for i, (label, values, color) in enumerate(series):
        xs = [g + (i - 2.5) * width for g in range(len(groups))]
        bars = left.bar(xs, [max(v, 0.1) for v in values], width, label=label, color=color)
        for bar, value in zip(bars, values, strict=True):
            if value:
                left.annotate(
                    f"{value:,.0f}",
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                    rotation=90,
                    xytext=(0, 2),
                    textcoords="offset points",
                )
    left.set_yscale("log")
    tallest = max((v for _, values, _ in series for v in values), default=10.0)
    left.set_ylim(1, max(tallest, 10.0) * 12)  # room for the rotated labels
    left.set_xticks(range(len(groups)), groups)
    left.set_ylabel("events/s (log scale)")
    left.set_title("Throughput: ours vs the naive step and the machine's ceilings")
    left.legend(fontsize=8, loc="upper center", ncol=3, frameon=False)

    cases = [
        ("0 ms", "ours:0ms", "all"),
        ("50 ms", "ours:50ms", "all"),
        ("slow tenant:\nfast, alone", "ours:slow-tenant/alone", "fast"),
        ("slow tenant:\nfast, mixed", "ours:slow-tenant/mixed", "fast"),
        ("slow tenant:\nslow", "ours:slow-tenant/mixed", "slow"),
        ("failing:\nfast", "ours:failing-tenant", "fast"),
        ("failing:\nfailing", "ours:failing-tenant", "failing"),
    ]
    cases = [c for c in cases if c[1] in figures]
    p50 = [figures[k]["latency_ms"].get(g, {}).get("p50") or 0 for _, k, g in cases]
    p99 = [figures[k]["latency_ms"].get(g, {}).get("p99") or 0 for _, k, g in cases]
    xs = list(range(len(cases)))
    right.bar([x - 0.2 for x in xs], [max(v, 1) for v in p50], 0.4, label="p50", color="#aec7e8")
    right.bar([x + 0.2 for x in xs], [max(v, 1) for v in p99], 0.4, label="p99", color="#1f77b4")
    for x, value in zip(xs, p99, strict=True):
        right.annotate(
            f"{value:,.0f}",
            (x + 0.2, max(value, 1)),
            ha="center",
            va="bottom",
            fontsize=7,
            xytext=(0, 2),
            textcoords="offset points",
        )
    right.set_yscale("log")
    right.set_ylim(None, max([*p99, 10.0]) * 3)
    right.set_xticks(xs, [c[0] for c in cases], fontsize=8)
    right.set_ylabel("end-to-end latency, ms (log scale)")
    right.set_title("Ours: input timestamp → outcome on order-events")
    right.legend(fontsize=8)
    runs = results.get("config", {}).get("mode", {}).get("runs", 1)
    fig.suptitle(
        f"returnhook bench ({results.get('mode')} mode, "
        f"{'median of ' + str(runs) + ' runs' if runs > 1 else '1 run'}, "
        f"{results.get('environment', {}).get('cpus')} CPUs, embedded broker) "
        f"{results.get('started_at', '')}",
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write(
    results: dict[str, Any], *, name: str | None = None, chart_path: Path | None = None
) -> Path:
    """Adds the summary to `results`, writes the JSON, prints the table, draws the chart."""
    summary = aggregate(results)
    results["summary"] = summary
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = results.get("started_at", "").replace(":", "").replace("-", "")[:15] or "run"
    target = RESULTS / (name or f"run-{stamp}-{results.get('mode')}.json")
    target.write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    print(markdown(results, summary))
    profile = results.get("profile")
    if profile and profile.get("samples"):
        from bench.profile import format_summary

        print("\n### profile of our worker, 0 ms (py-spy)\n")
        print("```\n" + format_summary(profile) + "\n```")
    # Next to its JSON: a run never overwrites the reference chart the README shows.
    drawn = chart(results, summary, chart_path or target.with_suffix(".png"))
    print(f"\nresults: {target}" + (f"\nchart: {drawn}" if drawn else ""))
    return target


def main() -> None:
    for arg in sys.argv[1:]:
        results = json.loads(Path(arg).read_text(encoding="utf-8"))
        summary = aggregate(results)
        print(markdown(results, summary))
        drawn = chart(results, summary, Path(arg).with_suffix(".png"))
        if drawn:
            print(f"\nchart: {drawn}")


if __name__ == "__main__":
    main()
