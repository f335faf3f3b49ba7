"""50 crowd annotators working at once against a real server on loopback lose no answer and never share a
copy (SQLite file database, uvicorn, one HTTP client per annotator)."""

from __future__ import annotations

import threading
from collections import Counter

import httpx
import pandas as pd
import pytest
from sqlalchemy import func, select

from tasks.annotate.package import package
from tasks.annotate.web import service
from tasks.annotate.web.app import create_app
from tasks.annotate.web.db import Answer, Assignment, open_database
from tests.tasks.annotate.web.conftest import SCENE, TEST_CFG, running_server

N_CA = 50


@pytest.fixture
def server(tmp_path, footage):
    """A 17-group batch (51 copies of 4 items) in a fresh database, its gold labelled, served by uvicorn."""
    paths = list(footage.clip_paths.values())
    selections = pd.DataFrame(
        {
            "clip_id": [f"load-{i:03d}" for i in range(68)],
            "scene": SCENE,
            "label": "Happy",
            "selected": True,
            "clip_path": [str(paths[i % len(paths)]) for i in range(68)],
        }
    )
    tasks = package(selections, TEST_CFG, "load")
    db = open_database(f"sqlite:///{tmp_path / 'load.db'}")
    with db.session() as s:
        service.load_tasks(s, tasks, TEST_CFG)
        pr, _ = service.add_annotator(s, "pr", "PR", "pr")
        tokens = [service.add_annotator(s, f"ca{i:02d}", "CA", f"ca{i:02d}")[1] for i in range(N_CA)]
    with db.session() as s:
        for t in tasks[tasks["gold"] & (tasks["copy"] == 0)].itertuples():
            service.submit_answer(s, pr, t.task_id, "relief", 1.0, TEST_CFG)
    with running_server(create_app(db, TEST_CFG)) as base:
        yield base, tokens, db
    db.dispose()


@pytest.mark.e2e
@pytest.mark.slow
def test_50_annotators_submitting_at_once_lose_no_answer(server):
    base, tokens, db = server
    barrier = threading.Barrier(N_CA)
    results: dict[str, list[int]] = {}
    errors: list[str] = []

    def annotator(token: str) -> None:
        statuses = []
        try:
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=120) as c:
                barrier.wait()  # everyone claims a copy at the same moment ...
                item = c.get("/api/next").json()["item"]
                for _ in range(item["progress"]["total"]):
                    barrier.wait()  # ... and submits each answer at the same moment
                    r = c.post(
                        "/api/answers",
                        json={"task_id": item["task_id"], "word": "relief", "time_spent_s": 1.5},
                    )
                    statuses.append(r.status_code)
                    item = c.get("/api/next").json()["item"] if r.status_code == 201 else item
            results[token] = statuses
        except Exception as exc:  # reported below with the others
            errors.append(repr(exc))
            barrier.abort()

    threads = [threading.Thread(target=annotator, args=(t,)) for t in tokens]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors[:3]
    assert len(results) == N_CA
    assert Counter(s for v in results.values() for s in v) == Counter({201: N_CA * 4})
    with db.session() as s:
        n_answers = s.scalar(select(func.count()).select_from(Answer).where(Answer.role == "CA"))
        held = s.execute(select(Assignment.annotator_id, Assignment.group_id, Assignment.verdict)).all()
    assert n_answers == N_CA * 4
    scored = [a for a, _, v in held if v is not None]
    assert sorted(scored) == sorted(f"ca{i:02d}" for i in range(N_CA))  # one finished copy each
    assert all(v == "AC" for a, _, v in held if a in scored and v is not None)
    claimed = [(a, g) for a, g, _ in held if a is not None]
    assert len(set(claimed)) == len(claimed)  # nobody holds two copies of a group
