"""faust's consumer, with the input topic's records handed over a fetch at a time.

faust delivers every record through its conductor, a channel queue and the agent's stream, with
two tasks (``wait_first``) per record in the fetcher: about as much CPU per event as the whole
webhook call. This consumer keeps faust's fetch loop (read offsets, gaps, commit-every, flow
control, other topics such as the settings table's through faust as before) but hands each
fetch's input records to one batch handler. Everything else stays faust's: group membership,
assignment, seeks, tracking of un-acknowledged messages, ``Consumer.ack`` and the commits.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers.aiokafka import Consumer

BatchHandler = Callable[[list[Any]], Awaitable[None]]

#: Records handed over at most at once (a fetch can bring many thousands).
MAX_BATCH = 500


class BatchIntakeConsumer(Consumer):  # type: ignore[misc]
    """``batch_topic``'s records go to ``on_batch`` in fetch order, already tracked."""

    batch_topic: str | None = None
    on_batch: BatchHandler | None = None

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - faust's loop
        # Follows faust 0.15.3's Consumer._drain_messages; only the input topic's path differs.
        callback = self.callback
        getmany = self.getmany
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        track = self.track_message
        batch_topic, on_batch = self.batch_topic, self.on_batch
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                self.diag.set_flag(CONSUMER_FETCHING)
                ait = cast(AsyncIterator[Any], getmany(timeout=1.0))
                await self.sleep(0)
                if self.should_stop:
                    continue
                batch: list[Any] = []
                async for tp, message in ait:
                    offset = message.offset
                    r_offset = get_read_offset(tp)
                    if r_offset is not None and offset < r_offset:
                        continue  # a record read before (faust drops these too)
                    if r_offset and offset - r_offset > 1 and acks_enabled_for(message.topic):
                        await self._add_gap(tp, r_offset + 1, offset)
                    if commit_every is not None and self._n_acked >= commit_every:
                        self._n_acked = 0
                        await self.commit()
                    if on_batch is not None and message.topic == batch_topic:
                        track(message)
                        batch.append(message)
                        set_read_offset(tp, offset)
                        if len(batch) >= MAX_BATCH:
                            await on_batch(batch)
                            batch = []
                        continue
                    await self.wait_first(callback(message), self.suspend_flow.wait())
                    set_read_offset(tp, offset)
                if batch and on_batch is not None:
                    await on_batch(batch)
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)
