"""What a replay was asked to do (``ReplayRequest``) and what came of it (stats, dry-run plan,
result): plain data the engine fills and the CLI prints.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from streams.kafka.topics import TopicCatalog
from streams.ops.config import WorkerConfig


@dataclass(frozen=True)
class ReplayRequest:
    bootstrap: str
    catalog: TopicCatalog
    start: datetime
    end: datetime | None
    replay_id: str
    config: WorkerConfig
    """Retry delays, limits, user agent and record cap: the same knobs as the worker's."""
    env: Mapping[str, str]
    """What ``${NAME}`` in settings expands to (secrets), as for the worker."""
    tenants: frozenset[str] = frozenset()
    orders: frozenset[str] = frozenset()
    dry_run: bool = False
    failed_only: bool = False
    """``--failed``: only input events whose latest order-event (per step) is Warning/Error."""
    connect_timeout_s: float = 10.0
    stall_timeout_s: float = 60.0
    """Give up when no record arrives and no partition advances for this long."""

    @property
    def filtering(self) -> bool:
        return bool(self.tenants or self.orders)


@dataclass
class ReplayStats:
    total: int = 0
    """Records between the start and stop offsets of every partition (known after a first fetch)."""
    read: int = 0
    done: int = 0
    """Records finished: skipped, or run with every output acknowledged by the broker."""
    in_window: int = 0
    outside_window: int = 0
    not_returns: int = 0
    filtered: int = 0
    """Return events of other tenants or orders than --tenant/--order asked for."""
    unattributed: int = 0
    """Unreadable records skipped because --tenant/--order were given (no tenant to match)."""
    not_failed: int = 0
    """With --failed: return events whose latest outcome was not Warning or Error."""
    failed_found: int | None = None
    """With --failed: input events found failed on the order-events topic since --from."""
    replayed: int = 0
    calls: int = 0
    failed_calls: int = 0
    patches: int = 0
    dead_letters: int = 0
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(tenant, actionStatus) → step outcomes written."""
    dead_letters_by_tenant: Counter[str] = field(default_factory=Counter)
    reasons: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(tenant, errorReason) → Warning/Error outcomes and dead letters with that reason."""
    ranges: dict[int, tuple[int, int | None]] = field(default_factory=dict)
    """Input partition → (start offset, stop offset); stop None until the first fetch."""

    @property
    def failures(self) -> int:
        return self.failed_calls + self.dead_letters


@dataclass
class TenantPlan:
    """What a dry run found for one tenant."""

    tenant: str
    events: int = 0
    orders: Counter[str] = field(default_factory=Counter)
    targets: Counter[tuple[int, str, str]] = field(default_factory=Counter)
    """(step index, step name, masked target) → events that would call it."""
    problem: str | None = None
    """Why the events would be dead-lettered instead (no or invalid settings)."""

    @property
    def calls(self) -> int:
        return sum(self.targets.values())


@dataclass
class ReplayResult:
    replay_id: str
    dry_run: bool
    stats: ReplayStats
    plan: dict[str, TenantPlan]
    elapsed_s: float
    unknown_tenants: list[str] = field(default_factory=list)
    """Tenants named by --tenant that have no settings on the settings topic."""


Progress = Callable[[ReplayStats], None]


class ReplayError(Exception):
    """A replay that cannot start or could not finish; the message is one line for the CLI."""


_USERINFO = re.compile(r"(://)[^/\s@]+@")


def one_line(exc: BaseException) -> str:
    """An exception as one line for the CLI, without user:password@ of any URL in it."""
    name = type(exc).__name__
    text = _USERINFO.sub(r"\1***@", " ".join(str(exc).split()))
    if not text:
        return name
    return text if text.startswith(name) else f"{name}: {text}"
