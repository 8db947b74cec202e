"""faust's table recovery, with the input partitions resumed only after their seek.

In faust-streaming 0.15.3, when recovery ends (``Recovery._resume_streams`` and
``Recovery.on_recovery_completed``) faust resumes fetching the input partitions, awaits the seek
to their committed offsets, then calls ``flow_control.resume()``, which empties every channel
queue. Records fetched while the seek runs are handed out from the old position, the ones still
queued are dropped by that clear, and the seek fetches them all again: a partition's records then
reach the agent out of offset order (measured: offsets 0–8, 10–49, then 0–49 again; 9 only in the
second pass). That broke per-order order and, with faust's off-by-one gap check (#606), let a
commit pass offset 9 before it ran.

Here the order is seek, resume the flow if recovery has not (the queues hold nothing of the input
yet), then resume the input partitions: after every assignment each record arrives once, in
offset order, from the committed offset. Everything else is faust's own code path.
"""

from __future__ import annotations

import asyncio
from typing import Any

from faust.tables import TableManager
from faust.tables.recovery import Recovery


class SeekFirstRecovery(Recovery):
    async def _resume_streams(self, generation_id: int = 0) -> None:
        await self.app.on_rebalance_complete.send()
        if await self._start_streams(generation_id):
            self.tables.on_actives_ready()

    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        self.log.info("Restore complete!")
        await self.app.on_rebalance_complete.send()
        self._set_recovery_ended()
        callbacks = [
            asyncio.ensure_future(
                table.on_recovery_completed(
                    self.actives_for_table[table], self.standbys_for_table[table]
                )
            )
            for table in self.tables.values()
        ]
        if callbacks:
            await asyncio.wait(callbacks)
        if not await self._start_streams(generation_id):
            return
        self.tables.on_actives_ready()
        if not self.app.assignor.assigned_standbys():
            self.tables.on_standbys_ready()
        self.app.on_rebalance_end()
        self.log.info("Worker ready")

    async def _start_streams(self, generation_id: int) -> bool:
        """Seek, resume the flow, and only then fetch the input; False if a rebalance overtook."""
        app: Any = self.app
        consumer = app.consumer
        if app.consumer_generation_id != generation_id:
            self.log.warning(
                "Recovery rebalancing again app id %s param %s",
                app.consumer_generation_id,
                generation_id,
            )
            return False
        assignment = consumer.assignment()
        if assignment:
            self.log.info("Seek stream partitions to committed offsets.")
            await self._wait(consumer.perform_seek(), timeout=app.conf.broker_request_timeout)
            hook = getattr(app, "on_input_sought", None)
            if hook is not None:
                # Where each partition starts, before any of its records is fetched.
                read = consumer._read_offset
                hook({tp: read.get(tp) for tp in assignment if not self._is_changelog_tp(tp)})
        else:
            self.log.info("Resuming streams with empty assignment")
        before_input = getattr(app, "before_input", None)
        if before_input is not None:
            await before_input()
            if app.consumer_generation_id != generation_id:
                return False
        self.completed.set()
        if not app.flow_control.is_active():
            # resume() empties every channel queue. Recovery has normally resumed the flow
            # already, and emptying the queues again would only drop tenant-settings records
            # read since then (nothing of the input is fetched yet).
            self.log.info("Resuming flow...")
            app.flow_control.resume()
        consumer.resume_flow()
        consumer.resume_partitions({tp for tp in assignment if not self._is_changelog_tp(tp)})
        await app._fetcher.maybe_start()
        return True


class SeekFirstTableManager(TableManager):
    """The table manager faust builds from ``App(TableManager=...)``, with the recovery above."""

    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = SeekFirstRecovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery
