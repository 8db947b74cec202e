import gc

from streams.ops.gc_tuning import GEN0_THRESHOLD, tune_gc


def test_tune_gc_freezes_the_start_up_heap_and_raises_the_threshold() -> None:
    before = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_threshold()[0] == GEN0_THRESHOLD
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
