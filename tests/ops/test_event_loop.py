import asyncio

import uvloop

from streams.ops.event_loop import use_uvloop


def test_use_uvloop_makes_new_loops_uvloop_loops() -> None:
    before = asyncio.get_event_loop_policy()
    try:
        assert use_uvloop()
        loop = asyncio.new_event_loop()
        try:
            assert isinstance(loop, uvloop.Loop)
        finally:
            loop.close()
    finally:
        asyncio.set_event_loop_policy(before)
