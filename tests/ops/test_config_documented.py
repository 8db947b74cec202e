"""Every option `returnhook config show` prints is in README's table, as its RETURNHOOK_* name."""

from __future__ import annotations

import re
from pathlib import Path

from streams.ops.config import WorkerConfig

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_worker_option_is_in_the_readme_table() -> None:
    text = README.read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| `RETURNHOOK_")]
    documented: set[str] = set()
    for row in rows:
        first = row.split("|")[1]
        names = re.findall(r"`(RETURNHOOK)?(_[A-Z_]+)`", first)
        prefix = ""
        for full, suffix in names:
            if full:  # `RETURNHOOK_WEB_PORT` / `_WEB_HOST`: the short ones share its first word
                prefix = "RETURNHOOK_" + suffix.strip("_").split("_")[0]
                documented.add("RETURNHOOK" + suffix)
            else:
                documented.add(prefix + suffix)
                documented.add("RETURNHOOK" + suffix)
    missing = [
        f"RETURNHOOK_{name.upper()}"
        for name in WorkerConfig.model_fields
        if f"RETURNHOOK_{name.upper()}" not in documented
    ]
    assert missing == []
