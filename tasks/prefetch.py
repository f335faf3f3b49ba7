"""Run a producer ahead of its consumer: decode the next frames while the detector works on these.

:func:`prefetched` iterates ``items`` on a background thread, at most ``depth`` items ahead, and hands them
over in order. Decoding (PyAV) and detection (onnxruntime, torch) release the GIL in their native code, so
stages 2 + 3 cost about max(decode, detect) rather than their sum. An exception in the producer is raised
in the consumer at the point it happened; a consumer that stops early stops the producer.

    >>> for sample in prefetched(segmented.clips, depth=8):          # doctest: +SKIP
    ...     detect(sample)
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

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
