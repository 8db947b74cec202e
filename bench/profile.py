"""Reading a py-spy profile (``--format raw --threads``: collapsed stacks) into a cost table.

    python -m bench.profile bench/results/profile-0ms-<stamp>.txt

Prints, over the sampled (non-idle) stacks: samples per thread; the share of samples that pass
through each area (faust, aiokafka, aiohttp, pydantic, logging, our code, ...; a sample counts
once per area it touches); the leaf functions where time is spent (self time); and our own
functions (``streams/``, ``models/``) with everything they call (inclusive).
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from typing import Any

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^():]*):?(?P<line>\d*)\)$")

# First match wins; checked against the frame's file path.
_AREAS: list[tuple[str, tuple[str, ...]]] = [
    ("ours: streams/", ("streams/",)),
    ("ours: models/", ("models/",)),
    ("bench", ("bench/",)),
    ("pydantic", ("pydantic/", "pydantic_core/", "pydantic_settings/")),
    ("logging", ("logging/",)),
    ("faust", ("faust/",)),
    ("mode", ("mode/",)),
    ("aiokafka", ("aiokafka/", "kafka/")),
    ("aiohttp (+yarl, multidict)", ("aiohttp/", "yarl/", "multidict/", "aiosignal/")),
    ("asyncio", ("asyncio/",)),
    ("uuid", ("uuid.py",)),
    ("json/orjson", ("json/", "orjson")),
]


def _parse_frame(frame: str) -> tuple[str, str]:
    match = _FRAME.match(frame)
    if not match:
        return frame, ""
    return match["func"], match["file"]


def _area(file: str) -> str:
    for name, needles in _AREAS:
        if any(n in file for n in needles):
            return name
    return "other (stdlib, C)"


def _ours(file: str) -> bool:
    return ("streams/" in file or "models/" in file) and "site-packages" not in file


# Where a main-thread sample's time goes, decided by the innermost frame of our code (with the
# library it was in at the time), else by the library's entry point under the event loop.
_OUR_FILES: list[tuple[str, tuple[str, ...]]] = [
    ("HTTP client (aiohttp + streams/http/webhook_client.py)", ("webhook_client.py",)),
    (
        "decode (orjson + pydantic: event, order view)",
        (
            "decoder.py",
            "models/casing.py",
            "models/order.py",
            "models/event.py",
            "input_record.py",
        ),
    ),
    (
        "request building, endpoint, ids (uuid5), egress check",
        (
            "request.py",
            "egress.py",
            "identity.py",
            "resolution.py",
            "models/settings.py",
            "signing.py",
            "tenant_settings.py",
            "settings_reader.py",
        ),
    ),
    (
        "outcome + output records (decide, patch, pydantic records)",
        (
            "outcome.py",
            "patching.py",
            "response.py",
            "workflow.py",
            "models/records.py",
            "models/webhook.py",
            "models/delivery.py",
            "dead_letters.py",
            "record_size.py",
        ),
    ),
    (
        "keyed lanes + offset ledger + progress records",
        ("lanes.py", "offset_ledger.py", "worker/progress.py", "core/progress.py"),
    ),
]
BUCKET_LOGGING = "per-event logging (+ redaction filter)"
BUCKET_METRICS = "metrics (prometheus_client)"
BUCKET_PRODUCE = "Kafka produce (faust Topic.send + aiokafka sender)"
BUCKET_CONSUME = "Kafka consume + faust stream (fetcher, conductor, agent iteration, acks)"
BUCKET_HTTP = _OUR_FILES[0][0]
BUCKET_LOOP = "asyncio event loop (select, scheduling)"
BUCKET_OTHER = "other"


def _bucket(frames: list[tuple[str, str]]) -> str:
    files = [file for _, file in frames]
    if any("logging/" in f or "redaction.py" in f or "log_format.py" in f for f in files):
        return BUCKET_LOGGING
    if any("prometheus_client" in f or "streams/ops/metrics.py" in f for f in files):
        return BUCKET_METRICS
    # The CLI (streams/cli/) is on every stack of the worker: where the loop runs, not a cost.
    ours = [i for i, (_, f) in enumerate(frames) if _ours(f) and "cli/" not in f]
    if any(f.endswith("batch_intake.py") for f in files) and not any(
        f.endswith(("decoder.py", "lanes.py", "input_record.py")) for f in files
    ):
        return BUCKET_CONSUME
    if any(f.endswith("key_partitioner.py") for f in files):
        return BUCKET_PRODUCE
    if ours:
        func, file = frames[ours[-1]]
        below = {_area(f) for _, f in frames[ours[-1] + 1 :]}
        if file.endswith("app.py"):
            if func.endswith("produce") or func.endswith("dead_letter"):
                return (
                    BUCKET_PRODUCE if below & {"faust", "aiokafka", "mode"} else (_OUR_FILES[3][0])
                )
            if below & {"faust", "mode", "aiokafka"}:
                return BUCKET_CONSUME
            if "_job_for" in func:
                return _OUR_FILES[1][0]
            return _OUR_FILES[3][0]
        for name, needles in _OUR_FILES:
            if any(n in file for n in needles):
                return name
        return BUCKET_OTHER
    runs = [i for i, (func, _) in enumerate(frames) if func in ("Handle._run", "_run_once")]
    runs += [i for i, (func, _) in enumerate(frames) if func.endswith("._run_once")]
    tail = frames[max(runs) + 1 :] if runs else frames
    areas = [_area(f) for _, f in tail]
    funcs = " ".join(func for func, _ in tail)
    if "aiohttp (+yarl, multidict)" in areas:
        return BUCKET_HTTP
    if "Sender" in funcs or "_on_published" in funcs or "Producer" in funcs:
        return BUCKET_PRODUCE
    if "faust" in areas or "aiokafka" in areas:
        return BUCKET_CONSUME
    if not tail or all(a in {"asyncio", "other (stdlib, C)", "mode"} for a in areas):
        return BUCKET_LOOP
    return BUCKET_OTHER


def summarize_collapsed(text: str, top: int = 25) -> dict[str, Any]:
    threads: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    inclusive_ours: Counter[str] = Counter()
    inclusive_area: Counter[str] = Counter()
    leaf_area: Counter[str] = Counter()
    buckets: Counter[str] = Counter()
    main_total = 0
    total = 0
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = frames[0] if frames[0].startswith("thread (") else "?"
        frames = frames[1:] if thread != "?" else frames
        name = thread.split(": ", 1)[-1] if ": " in thread else thread
        threads[name] += count
        total += count
        parsed = [_parse_frame(f) for f in frames]
        if not parsed:
            continue
        if name == "MainThread":
            buckets[_bucket(parsed)] += count
            main_total += count
        leaf_func, leaf_file = parsed[-1]
        self_time[f"{leaf_func} ({_short(leaf_file)})"] += count
        leaf_area[_area(leaf_file)] += count
        for area in {_area(file) for _, file in parsed}:
            inclusive_area[area] += count
        for key in {f"{func} ({_short(file)})" for func, file in parsed if _ours(file)}:
            inclusive_ours[key] += count

    def table(counter: Counter[str], limit: int) -> list[dict[str, Any]]:
        return [
            {"what": key, "samples": n, "share": round(n / total, 3) if total else 0.0}
            for key, n in counter.most_common(limit)
        ]

    return {
        "samples": total,
        "main_thread_samples": main_total,
        "main_thread_buckets": [
            {"what": k, "samples": n, "share": round(n / main_total, 3) if main_total else 0.0}
            for k, n in buckets.most_common()
        ],
        "threads": table(threads, 10),
        "areas_inclusive": table(inclusive_area, 20),
        "areas_self": table(leaf_area, 20),
        "self_top": table(self_time, top),
        "ours_inclusive": table(inclusive_ours, top),
    }


def _short(file: str) -> str:
    for marker in ("site-packages/", "/work/main/", "lib/python3"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return file


def format_summary(summary: dict[str, Any]) -> str:
    lines = [f"{summary['samples']} samples (non-idle)"]
    for title, key in (
        ("threads", "threads"),
        ("main thread (the event loop) by cost centre", "main_thread_buckets"),
        ("areas a sample passes through (inclusive)", "areas_inclusive"),
        ("areas where the sample is (self)", "areas_self"),
        ("self time, top functions", "self_top"),
        ("our functions, inclusive", "ours_inclusive"),
    ):
        lines.append(f"\n{title}:")
        for row in summary.get(key, []):
            lines.append(f"  {row['share'] * 100:5.1f}%  {row['samples']:6d}  {row['what']}")
    return "\n".join(lines)


def main() -> None:
    for path in sys.argv[1:]:
        with open(path, encoding="utf-8") as f:
            print(format_summary(summarize_collapsed(f.read())))


if __name__ == "__main__":
    main()
