"""Terminal output for the CLI commands."""

from __future__ import annotations

from rich.console import Console


def console(*, stderr: bool = False) -> Console:
    """Output that is piped (CI logs, grep) is not cut or wrapped at rich's default 80 columns.

    Without this, long topic names end in "…" in the `topics apply` table and every error line
    naming a bad settings field is broken in two.
    """
    probe = Console(stderr=stderr)
    width = None if probe.is_terminal else max(probe.width, 200)
    return Console(stderr=stderr, soft_wrap=True, width=width)
