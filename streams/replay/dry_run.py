"""The dry run: what a replay would call, per tenant and target, without calling anything.
A part of ``Replay`` (``streams.replay.run``): it shares the run's state.
"""

from __future__ import annotations

import socket
from typing import Any, TypeVar
from urllib.parse import urlsplit

from aiokafka.structs import ConsumerRecord

from models.secret_reference import SecretReferenceError, resolve_references
from models.settings import TenantSettings, WorkflowStep
from streams.core.decoder import Accepted, Rejected
from streams.core.resolution import resolve_endpoint, step_in_scope
from streams.http.egress import EgressPolicy
from streams.ops.redaction import mask_url
from streams.replay.report import ReplayRequest, ReplayStats, TenantPlan

T = TypeVar("T")
_FETCH_MAX_WAIT_MS = 200  # the embedded broker holds every fetch for its full max wait
_POLL_MS = 500
_MAX_RECORDS_PER_POLL = 500


class DryRunPlanner:
    """Counts, per tenant, the events and the (masked) targets each would call."""

    request: ReplayRequest
    stats: ReplayStats
    plan: dict[str, TenantPlan]
    _secrets: Any

    async def _plan_record(self, record: ConsumerRecord) -> None:
        decoded = self._classify(record)
        if isinstance(decoded, Rejected):
            self.stats.dead_letters += 1
            self.stats.dead_letters_by_tenant["(unreadable)"] += 1
        elif isinstance(decoded, Accepted):
            self._plan_event(decoded)
        self._skip()

    def _plan_event(self, accepted: Accepted) -> None:
        tenant = accepted.event.tenant_id
        plan = self.plan.get(tenant)
        if plan is None:
            plan = self.plan[tenant] = TenantPlan(tenant)
        plan.events += 1
        plan.orders[accepted.order_id] += 1
        self.stats.replayed += 1
        settings = self._settings_for(tenant)
        if isinstance(settings, Rejected):
            plan.problem = f"{settings.error}: its events would be dead-lettered"
            self.stats.reasons[(tenant, settings.error)] += 1
            self.stats.dead_letters += 1
            self.stats.dead_letters_by_tenant[tenant] += 1
            return
        for index, step in enumerate(settings.return_workflow):
            if not step.is_webhook_return_step or not step.active:
                continue
            if not step_in_scope(step, accepted.order_view):
                continue
            target = self._target(step, settings, accepted)
            plan.targets[(index, step.name, target)] += 1

    def _target(self, step: WorkflowStep, settings: TenantSettings, accepted: Accepted) -> str:
        endpoint = resolve_endpoint(step, settings.connectors, accepted.order_view)
        if endpoint is None:
            return "no endpoint: connector not found (outcome Error, no call)"
        try:
            url = resolve_references(endpoint.url, settings.tenant_id, self._secrets)
        except SecretReferenceError as exc:
            return f"{mask_url(endpoint.url)} (would not be sent: {exc})"
        refused = egress_refusal(EgressPolicy(self.request.config.egress_allow), url)
        if refused:
            return f"{mask_url(url)} (would not be sent: {refused})"
        return mask_url(url)

    # -- the real thing -------------------------------------------------------------------------


def egress_refusal(policy: EgressPolicy, url: str) -> str | None:
    """Why the worker's egress policy would refuse ``url`` (the dry run resolves the name once)."""
    host = urlsplit(url).hostname
    if not host:
        return None
    if policy.host_allowed(host):
        return None
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return None  # unresolvable now: the call would fail with its own reason
    for address in sorted(addresses):
        reason = policy.refusal(host, str(address))
        if reason:
            return reason
    return None
