"""Decoding ahead of detection: items come in order, a producer's error reaches the consumer, a consumer
that stops early stops the producer, and producer and consumer overlap in time. Mapping ahead on threads:
results in order, on several threads at once, a reading error raised after the items read before it."""

from __future__ import annotations

import threading
import time

import pytest

from tasks.prefetch import mapped_ahead, prefetched


def test_items_come_in_order():
    assert list(prefetched(iter(range(100)), depth=3)) == list(range(100))
    assert list(prefetched([], depth=1)) == []


def test_a_producer_error_is_raised_in_the_consumer_after_the_items_before_it():
    def items():
        yield 1
        yield 2
        raise OSError("decoding stopped at frame 48")

    got = []
    with pytest.raises(OSError, match="frame 48"):
        for item in prefetched(items(), depth=2):
            got.append(item)
    assert got == [1, 2]


def test_stopping_early_stops_the_producer():
    produced = []

    def items():
        for k in range(1000):
            produced.append(k)
            yield k

    before = threading.active_count()
    for item in prefetched(items(), depth=2):
        if item == 5:
            break
    assert threading.active_count() == before  # the producer thread has ended
    assert len(produced) <= 5 + 1 + 2 + 1  # at most depth items (and the one in hand) beyond the last read


def test_producer_and_consumer_overlap():
    def slow_items():
        for k in range(8):
            time.sleep(0.05)  # decoding a clip
            yield k

    start = time.perf_counter()
    for _ in prefetched(slow_items(), depth=2):
        time.sleep(0.05)  # detecting it
    elapsed = time.perf_counter() - start
    assert elapsed < 0.65  # in sequence 0.8 s; overlapped about 0.45 s


def test_depth_must_be_positive():
    with pytest.raises(ValueError, match="depth must be at least 1 item, got 0"):
        prefetched([1], depth=0)


@pytest.mark.parametrize("workers", [0, 1, 4])
def test_mapped_ahead_gives_each_item_its_result_in_order(workers):
    assert list(mapped_ahead(range(50), lambda x: x * x, workers)) == [(x, x * x) for x in range(50)]
    assert list(mapped_ahead([], str, workers)) == []


def test_mapped_ahead_runs_the_function_on_several_threads():
    names: set[str] = set()
    barrier = threading.Barrier(3, timeout=5)

    def fn(x):
        names.add(threading.current_thread().name)
        if x < 3:
            barrier.wait()  # three calls at once, or a BrokenBarrierError
        return x

    assert [x for x, _ in mapped_ahead(range(12), fn, workers=3)] == list(range(12))
    assert len(names) == 3 and threading.current_thread().name not in names


@pytest.mark.parametrize("workers", [0, 3])
def test_mapped_ahead_raises_a_reading_error_after_the_items_before_it(workers):
    def items():
        yield from range(5)
        raise OSError("decoding stopped at frame 5")

    got = []
    with pytest.raises(OSError, match="frame 5"):
        for item, result in mapped_ahead(items(), lambda x: -x, workers):
            got.append((item, result))
    assert got == [(x, -x) for x in range(5)]
