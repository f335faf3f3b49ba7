"""What keeps the labelling server fast with many annotators at once: a started server's heap is frozen out
of the garbage collector's full passes."""

from __future__ import annotations

import gc

from fastapi.testclient import TestClient

from tasks.annotate.web.app import create_app
from tests.tasks.annotate.web.conftest import TEST_CFG


def test_a_started_server_freezes_its_heap(loaded):
    gc.unfreeze()
    try:
        with TestClient(create_app(loaded, TEST_CFG)):
            assert gc.get_freeze_count() == 0  # an app in a test, or embedded: the heap is left alone
        with TestClient(create_app(loaded, TEST_CFG, freeze_heap=True)):
            assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
