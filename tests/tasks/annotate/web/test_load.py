"""What keeps the labelling server fast with many annotators at once: this process's SQLite writers take
turns on one lock (not in SQLite's polling busy handler), a login commits without a disk sync while an
answer waits for one, and a started server's heap is frozen out of the garbage collector's full passes."""

from __future__ import annotations

import gc
import threading
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from tasks.annotate.web.app import create_app
from tasks.annotate.web.db import open_database, write_lock
from tests.tasks.annotate.web.conftest import RIGHT, TEST_CFG, label_gold


def synchronous(s) -> int:
    """SQLite's ``synchronous`` setting of the session's connection: 1 NORMAL, 2 FULL."""
    return s.execute(text("PRAGMA synchronous")).scalar()


def test_writers_of_one_file_take_turns_on_one_lock(loaded, tmp_path):
    assert loaded.lock is not None
    again = open_database(loaded.url, migrate=False)
    try:
        assert again.lock is loaded.lock  # two engines over one file, one lock
    finally:
        again.dispose()
    assert write_lock(f"sqlite:///{tmp_path / 'other.db'}") is not loaded.lock
    assert write_lock("sqlite://") is None and write_lock("postgresql+psycopg://u@h/db") is None

    order: list[str] = []
    inside = threading.Event()

    def second_writer() -> None:
        inside.wait()
        with loaded.session() as s:
            order.append("second begins")
            s.execute(text("UPDATE annotators SET name = name"))

    t = threading.Thread(target=second_writer)
    t.start()
    with loaded.session() as s:
        s.execute(text("UPDATE annotators SET name = name"))
        inside.set()
        time.sleep(0.3)  # the second writer is waiting for its turn meanwhile
        order.append("first commits")
    t.join(timeout=30)
    assert order == ["first commits", "second begins"]
    assert not loaded.lock.locked()


def test_a_failed_write_gives_up_its_turn(loaded):
    with pytest.raises(RuntimeError), loaded.session():
        raise RuntimeError("rolled back")
    assert not loaded.lock.locked()
    with loaded.session() as s:  # the next writer is not kept waiting
        assert s.execute(text("SELECT 1")).scalar() == 1


def test_only_a_not_durable_write_skips_the_sync(loaded):
    with loaded.session(durable=False) as s:
        assert synchronous(s) == 1  # NORMAL: WAL appended, not synced; survives a crash of the server
    for _ in range(3):  # the pool hands the same connection back: it is synced again for an answer
        with loaded.session() as s:
            assert synchronous(s) == 2  # FULL
        with loaded.session(durable=False) as s:
            assert synchronous(s) == 1


def test_a_login_is_the_only_write_that_skips_the_sync(team):
    ca, pr = team.add("ca1", "CA"), team.add("pr1", "PR")
    label_gold(pr)
    calls: list[bool] = []
    session = team.db.session

    def recording(*, durable: bool = True):
        calls.append(durable)
        return session(durable=durable)

    team.db.session = recording
    try:
        page = TestClient(team.app, headers={"Origin": "http://testserver"})
        assert page.post("/api/login", json={"token": team.tokens["ca1"]}).status_code == 200
        assert calls == [False]
        item = page.get("/api/next").json()["item"]  # claims a copy: a durable write
        r = page.post("/api/answers", json={"task_id": item["task_id"], "word": RIGHT, "time_spent_s": 1})
        assert r.status_code == 201
        assert page.post("/api/logout").json()["ended"] is True
        assert calls == [False, True, True, True]
        assert ca.get("/api/answers/mine").json()[0]["task_id"] == item["task_id"]
    finally:
        team.db.session = session


def test_a_started_server_freezes_its_heap(loaded):
    gc.unfreeze()
    try:
        with TestClient(create_app(loaded, TEST_CFG)):
            assert gc.get_freeze_count() == 0  # an app in a test, or embedded: the heap is left alone
        with TestClient(create_app(loaded, TEST_CFG, freeze_heap=True)):
            assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
