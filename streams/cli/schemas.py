"""``returnhook schemas``: write (or check) the JSON Schemas of the output records."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from models.output_schemas import output_schema_files
from streams.ops.console import console


def schemas(
    out: Annotated[
        Path, typer.Option("--out", help="directory to write the *.schema.json files to")
    ] = Path("schemas"),
    check: Annotated[
        bool,
        typer.Option("--check", help="write nothing; exit 1 if a file differs from the models"),
    ] = False,
) -> None:
    """JSON Schemas of order-patches, order-events, dead letters and attempts, from the models.

    The committed schemas/ directory is the contract for downstream consumers.
    """
    stdout, stderr = console(), console(stderr=True)
    stale = []
    for name, text in output_schema_files().items():
        path = out / name
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current == text:
            continue
        stale.append(path)
        if not check:
            out.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if check and stale:
        names = ", ".join(str(p) for p in stale)
        stderr.print(f"out of date: {names}; run `returnhook schemas --out {out}`", markup=False)
        raise typer.Exit(code=1)
    verb = "up to date" if not stale else f"wrote {len(stale)} file(s)"
    stdout.print(f"schemas in {out}: {verb}", markup=False)
