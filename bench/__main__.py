"""`python -m bench [--quick] [options]`: see bench/README.md."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
from pathlib import Path

from bench import report
from bench.scenarios import FULL, QUICK, SCENARIOS, Bench, Options, log


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="returnhook against the machine's own ceilings, side by side in one run.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="1 run per scenario, small batches (< 3 min)"
    )
    parser.add_argument("--runs", type=int, help="runs per scenario (full mode: 3)")
    parser.add_argument("--events", type=int, help="events per 0 ms / 50 ms run")
    parser.add_argument("--failing-events", type=int, help="events per failing-tenant run")
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"comma-separated subset of {','.join(SCENARIOS)}",
    )
    parser.add_argument(
        "--retry-delays",
        default="1,5,15",
        help="the worker's retry delays (production default 1,5,15; the failing tenant waits them)",
    )
    parser.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="environment for our worker, e.g. RETURNHOOK_MAX_IN_FLIGHT=512 or faust's "
        "STREAM_BUFFER_MAXSIZE=16384 (repeatable)",
    )
    parser.add_argument(
        "--worker-src",
        type=Path,
        help="run our worker from this source tree (put first on PYTHONPATH), for before/after",
    )
    parser.add_argument("--hosts", type=int, default=4, help="receiver ports for fast tenants")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive step")
    parser.add_argument("--no-lean", action="store_true", help="skip the lean step")
    parser.add_argument("--no-ceilings", action="store_true", help="skip the ceilings")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy our worker during extra 0 ms runs"
    )
    parser.add_argument("--label", default="", help="free text stored with the results")
    parser.add_argument(
        "--save-as", help="file name under bench/results/ (e.g. reference-quick.json)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    mode = QUICK if args.quick else FULL
    if args.runs:
        mode = dataclasses.replace(mode, runs=args.runs)
    if args.events:
        mode = dataclasses.replace(mode, burst_events=args.events, naive_events_0=args.events)
    if args.failing_events:
        mode = dataclasses.replace(mode, failing_events=args.failing_events)
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        print(f"unknown scenarios: {sorted(unknown)}", file=sys.stderr)
        return 2
    worker_env = {}
    for item in args.worker_env:
        key, sep, value = item.partition("=")
        if not sep:
            print(f"--worker-env wants KEY=VALUE, got {item!r}", file=sys.stderr)
            return 2
        worker_env[key] = value
    options = Options(
        mode=mode,
        scenarios=scenarios,
        retry_delays=args.retry_delays,
        worker_env=worker_env,
        worker_src=args.worker_src.resolve() if args.worker_src else None,
        naive=not args.no_naive,
        lean=not args.no_lean,
        ceilings=not args.no_ceilings,
        profile=args.profile,
        hosts=args.hosts,
        label=args.label,
    )
    bench = Bench(options)
    try:
        results = asyncio.run(bench.run())
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    report.write(results, name=args.save_as)
    log(f"done in {results['elapsed_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
