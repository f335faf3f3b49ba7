"""Run a producer ahead of its consumer: decode the next frames while the detector works on these.

:func:`prefetched` iterates ``items`` on a background thread, at most ``depth`` items ahead, and hands them
over in order. Decoding (PyAV) and detection (onnxruntime, torch) release the GIL in their native code, so
stages 2 + 3 cost about max(decode, detect) rather than their sum. An exception in the producer is raised
in the consumer at the point it happened; a consumer that stops early stops the producer.
:func:`mapped_ahead` applies a function to the items on a few threads ahead of the loop that needs the
results in order (shot-cut detection's small frames, while the loop decides cut by cut).

    >>> for sample in prefetched(segmented.clips, depth=8):          # doctest: +SKIP
    ...     detect(sample)
    >>> for frame, small in mapped_ahead(frames, shrink, workers=4):  # doctest: +SKIP
    ...     decide(small)
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

_DONE = object()


def prefetched(items: Iterable[T], depth: int = 4) -> Iterator[T]:
    """``items`` in order, produced by a background thread up to ``depth`` items ahead."""
    if depth < 1:
        raise ValueError(f"depth must be at least 1 item, got {depth}")
    return _handover(items, depth)


def _handover(items: Iterable[T], depth: int) -> Iterator[T]:
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            put((_DONE, exc))
            return
        put((_DONE, None))

    worker = threading.Thread(target=produce, name="prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item, error = slots.get()
            if item is _DONE:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        worker.join()


def mapped_ahead(
    items: Iterable[T], fn: Callable[[T], R], workers: int, depth: int | None = None
) -> Iterator[tuple[T, R]]:
    """``(item, fn(item))`` in order, ``fn`` running on ``workers`` threads up to ``depth`` items ahead
    (default ``4 * workers``); with ``workers <= 1``, in the caller's thread. ``items`` is read in the
    caller's thread: when reading it fails, the items read before are handed over first, then the error
    is raised, as a plain loop would."""
    if workers <= 1:
        for item in items:
            yield item, fn(item)
        return
    depth = depth or 4 * workers
    it = iter(items)
    with ThreadPoolExecutor(workers, thread_name_prefix="ahead") as pool:
        pending: deque = deque()
        try:
            while True:
                try:
                    item = next(it)
                except StopIteration:
                    break
                except BaseException:
                    while pending:
                        done, future = pending.popleft()
                        yield done, future.result()
                    raise
                pending.append((item, pool.submit(fn, item)))
                if len(pending) >= depth:
                    done, future = pending.popleft()
                    yield done, future.result()
            while pending:
                done, future = pending.popleft()
                yield done, future.result()
        finally:
            for _, future in pending:
                future.cancel()
