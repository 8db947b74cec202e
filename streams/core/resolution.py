"""Which steps apply to an order and which endpoint a step calls (SPEC §3). Pure."""

from __future__ import annotations

from pydantic import BaseModel

from models.order import OrderView
from models.settings import Connector, WorkflowStep


class Endpoint(BaseModel):
    """Where a step posts, and the connector (if any) that lends auth, timeout and headers."""

    url: str
    connector: Connector | None = None


def _admits(enabled: list[str], disabled: list[str], value: str | None) -> bool:
    """Empty ``enabled`` admits everything; ``disabled`` always excludes."""
    folded = value.lower() if value else None
    if folded is not None and folded in {d.lower() for d in disabled}:
        return False
    if not enabled:
        return True
    return folded is not None and folded in {e.lower() for e in enabled}


def step_in_scope(step: WorkflowStep, order: OrderView) -> bool:
    """The step's own scope: an order outside it skips the step altogether."""
    if not _admits(step.enabled_for_markets, step.disabled_for_markets, order.market_id):
        return False
    if not _admits(step.enabled_for_stores, step.disabled_for_stores, order.store_id):
        return False
    tags = {t.lower() for t in order.tags}
    if any(t.lower() in tags for t in step.disabled_for_tags):
        return False
    return not step.enabled_for_tags or any(t.lower() in tags for t in step.enabled_for_tags)


def resolve_connector(
    step: WorkflowStep, connectors: list[Connector], order: OrderView
) -> Connector | None:
    """Picks the connector for a step and an order.

    Candidates have the step's connector name and admit the order's market (``disabled`` always
    excludes; a non-empty ``enabled`` must name the market). A step that names a ``connectorId``
    only takes that connector: calling some other system with the order would be worse than
    reporting "connector not found". Among candidates, one that names the market explicitly
    wins over one that admits every market; ties go to the first listed.
    """
    candidates = [
        c
        for c in connectors
        if c.name.lower() == step.connector.lower()
        and _admits(c.enabled_for_markets, c.disabled_for_markets, order.market_id)
    ]
    if step.connector_id:
        candidates = [c for c in candidates if c.connector_id == step.connector_id]
    explicit = [c for c in candidates if c.enabled_for_markets]
    ranked = explicit or candidates
    return ranked[0] if ranked else None


def resolve_endpoint(
    step: WorkflowStep, connectors: list[Connector], order: OrderView
) -> Endpoint | None:
    """An inline ``Host`` wins for the URL; a resolved connector still lends auth and headers."""
    connector = resolve_connector(step, connectors, order)
    url = step.host or (connector.host if connector else None)
    if not url:
        return None
    return Endpoint(url=url, connector=connector)
