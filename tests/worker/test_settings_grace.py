"""An event whose tenant's settings have not arrived yet waits a grace period for them."""

from __future__ import annotations

from models.settings import TenantSettings
from streams.core.decoder import Rejected
from streams.worker.tenant_settings import SettingsCache, await_settings

UNKNOWN = Rejected(reason="unknown_tenant", error="no settings for tenant 'acme' on t")
INVALID = Rejected(reason="invalid_tenant_settings", error="bad")
SETTINGS = TenantSettings(tenant_id="acme")


class FakeTime:
    """A clock that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


async def test_settings_that_arrive_within_the_grace_are_used() -> None:
    time = FakeTime()
    answers = iter([UNKNOWN, UNKNOWN, UNKNOWN, SETTINGS])

    found = await await_settings(
        lambda: next(answers), 10.0, poll_s=0.1, sleep=time.sleep, clock=time.clock
    )

    assert found is SETTINGS
    assert time.sleeps == [0.1, 0.1, 0.1]


async def test_a_tenant_that_never_arrives_is_unknown_after_the_grace() -> None:
    time = FakeTime()

    found = await await_settings(
        lambda: UNKNOWN, 1.0, poll_s=0.3, sleep=time.sleep, clock=time.clock
    )

    assert isinstance(found, Rejected) and found.reason == "unknown_tenant"
    assert found.error == "no settings for tenant 'acme' on t (waited 1 s for them)"
    assert abs(sum(time.sleeps) - 1.0) < 1e-9  # never past the grace
    assert max(time.sleeps) <= 0.3


async def test_known_and_invalid_settings_do_not_wait() -> None:
    time = FakeTime()
    for answer in (SETTINGS, INVALID):
        found = await await_settings(
            lambda answer=answer: answer, 10.0, sleep=time.sleep, clock=time.clock
        )
        assert found is answer
    assert time.sleeps == []


async def test_no_grace_means_no_wait() -> None:
    time = FakeTime()
    found = await await_settings(lambda: UNKNOWN, 0.0, sleep=time.sleep, clock=time.clock)
    assert isinstance(found, Rejected) and found.reason == "unknown_tenant"
    assert time.sleeps == []


def test_the_cache_reports_a_missing_tenant_as_unknown() -> None:
    found = SettingsCache().lookup("acme", None, "tenant-settings")
    assert isinstance(found, Rejected) and found.reason == "unknown_tenant"
