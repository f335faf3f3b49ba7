"""Real footage for the labelling app: a few clips of the demo video (a woman going from crying to
laughing), segmented, face-detected with SCRFD and encoded to mp4 by the pipeline's own stages, written to a
catalog as ``videos``/``clips``/``faces``/``selections`` and packaged into a batch by ``package``."""

from __future__ import annotations

import itertools
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from data_catalog.io import Catalog
from data_catalog.lineage import RunContext
from flows.cli import app
from tasks.annotate.config import AnnotateConfig
from tasks.annotate.web.db import Task

SCENE = "Talkshow"
BATCH = "b0001"
# A title with markup in it: the page must show it as text.
TITLE = 'Crying, then laughing <img src=x onerror="document.body.dataset.pwned=1"><b>bold</b>'
#: Groups of 4 clips with 2 gold items each: a copy with both gold right is AC, one right IP, none UA.
TEST_CFG = AnnotateConfig(group_size=4, gold_fraction=0.5, n_copies=3)


@dataclass(frozen=True)
class Footage:
    catalog: Catalog
    clip_ids: list[str]
    clip_paths: dict[str, Path]
    video_id: str


@pytest.fixture(scope="session")
def footage(tmp_path_factory, demo_media) -> Footage:
    """Eight clips (0.5-1 s) of the demo video with their face tracks, in a catalog."""
    from models.detectors import create_detector
    from tasks.face_filter.detect import detect_clip, face_rows
    from tasks.media import encode_clip
    from tasks.segment import SegmentConfig, segment_video

    root = tmp_path_factory.mktemp("footage")
    source = demo_media("wolfgang-langer")
    video_id = "local-wolfgang"
    seg_cfg = SegmentConfig(min_len=0.5, max_len=1.0, shot_cuts=False, n_sample_frames=2, max_side=320)
    seg = segment_video(source, video_id, SCENE, seg_cfg, seed=0)
    detector = create_detector("scrfd", device="cpu")
    ctx = RunContext.create({"test": "annotate-web"}, run_id="r0")
    clips, faces, selections, paths = [], [], [], {}
    for sample in itertools.islice(seg.clips, 8):
        clip = sample.clip
        out = encode_clip(
            source, clip["start_frame"], clip["end_frame"], root / "clips" / f"{clip['clip_id']}.mp4"
        )
        paths[clip["clip_id"]] = out
        clips.append({**clip, "clip_path": str(out)})
        scale = seg.media["width"] / sample.frames[0].image.shape[1]
        faces += face_rows(detect_clip(sample, detector, scale))
        selections.append(
            {"clip_id": clip["clip_id"], "scene": SCENE, "label": "Sad", "selected": True,
             "order": len(selections), "clip_path": str(out)}
        )  # fmt: skip
    catalog = Catalog(root / "catalog")
    video = {
        "video_id": video_id, "engine": "local", "source_id": "wolfgang", "url": str(source), "title": TITLE,
        "scene": SCENE, "scenario": "WIS", "status": "downloaded", "selected": True, "crawl_run_id": "r0",
    }  # fmt: skip
    for name, rows, stage in (
        ("videos", [video], "crawl"),
        ("clips", clips, "segment"),
        ("faces", faces, "face_filter"),
        ("selections", selections, "subsample"),
    ):
        catalog.write(name, [{**r, **ctx.lineage(stage)} for r in rows], scene=SCENE, run_id="r0")
    return Footage(catalog, list(paths), paths, video_id)


@pytest.fixture(scope="session")
def batch(footage) -> Catalog:
    """The footage packaged as batch b0001: 2 groups of 4 clips, 2 gold each, 3 copies."""
    from tasks.annotate.package import package_stage

    ctx = RunContext.create({"annotate": TEST_CFG.model_dump(mode="json")}, run_id=BATCH)
    package_stage(footage.catalog, TEST_CFG, ctx, BATCH)
    return footage.catalog


@pytest.fixture(scope="session")
def loaded_template(tmp_path_factory, batch) -> Path:
    """A migrated SQLite database with batch b0001 loaded (no annotators yet), made once."""
    from tasks.annotate.web import service
    from tasks.annotate.web.db import open_database
    from tasks.annotate.web.manifests import read_batch

    path = tmp_path_factory.mktemp("db") / "annotate.db"
    db = open_database(f"sqlite:///{path}")
    data = read_batch(batch, BATCH)
    with db.session() as s:
        service.load_tasks(s, data.tasks, TEST_CFG, titles=data.titles, boxes=data.boxes)
    db.dispose()
    return path


@pytest.fixture
def loaded(tmp_path, loaded_template):
    """A fresh copy of the loaded database for one test."""
    from tasks.annotate.web.db import open_database

    path = tmp_path / "annotate.db"
    shutil.copyfile(loaded_template, path)
    db = open_database(f"sqlite:///{path}", migrate=False)
    yield db
    db.dispose()


class Team:
    """Annotators registered in a database, each with a logged-in test client."""

    def __init__(self, db, app):
        self.db, self.app = db, app
        self.tokens: dict[str, str] = {}

    def add(self, annotator_id: str, role: str) -> TestClient:
        from tasks.annotate.web import service

        with self.db.session() as s:
            _, token = service.add_annotator(s, annotator_id, role, annotator_id)
        self.tokens[annotator_id] = token
        return self.client(annotator_id)

    def client(self, annotator_id: str) -> TestClient:
        c = TestClient(self.app)
        c.headers["Authorization"] = f"Bearer {self.tokens[annotator_id]}"
        return c


@pytest.fixture
def team(loaded) -> Team:
    from tasks.annotate.web.app import create_app

    return Team(loaded, create_app(loaded, TEST_CFG))


@contextmanager
def running_server(app) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port; yields the base URL."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    srv = uvicorn.Server(uvicorn.Config(app, log_level="warning", limit_concurrency=200))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started, "the server did not start"
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        srv.should_exit = True
        thread.join(timeout=10)
        sock.close()


# Shared by the web tests: the gold answers, a whole copy, a started team, a project on disk, the CLI.

RIGHT, WRONG = "sadness", "rage"  # the PR labels every gold item Sad (sadness)


def label_gold(pr) -> int:
    """A PR labels every gold item; returns how many."""
    n = 0
    while (item := pr.get("/api/next", params={"queue": "gold"}).json()["item"]) is not None:
        r = pr.post("/api/answers", json={"task_id": item["task_id"], "word": RIGHT, "time_spent_s": 2.5})
        assert r.status_code == 201, r.text
        n += 1
    return n


def gold_tasks(db) -> set[str]:
    with db.session() as s:
        return set(s.scalars(select(Task.task_id).where(Task.gold.is_(True))))


def answer_copy(client, db, gold_right: int, queue: str = "label") -> list[dict]:
    """Answer the whole current copy: the first ``gold_right`` gold items right, the other gold items
    wrong, the rest with a word; returns the responses."""
    gold = gold_tasks(db)
    out, right_left = [], gold_right
    first = client.get("/api/next", params={"queue": queue}).json()["item"]
    assert first is not None, "no copy to label"
    total = first["progress"]["total"]
    for i in range(total):
        item = client.get("/api/next", params={"queue": queue}).json()["item"]
        assert item["progress"] == {"index": i + 1, "total": total}
        word = "amazement"
        if item["task_id"] in gold:
            word, right_left = (RIGHT, right_left - 1) if right_left > 0 else (WRONG, right_left)
        r = client.post("/api/answers", json={"task_id": item["task_id"], "word": word, "time_spent_s": 3})
        assert r.status_code == 201, r.text
        out.append(r.json())
    return out


@pytest.fixture
def started(team):
    """Two CAs and a PR; the gold items are labelled and each CA holds a copy."""
    ca1, ca2, pr = team.add("ca1", "CA"), team.add("ca2", "CA"), team.add("pr1", "PR")
    label_gold(pr)
    item1 = ca1.get("/api/next").json()["item"]
    item2 = ca2.get("/api/next").json()["item"]
    return team, ca1, ca2, pr, item1, item2


@pytest.fixture
def project(tmp_path, batch) -> Path:
    """A storage root holding a copy of the batch's catalog (the test writes answers into it)."""
    shutil.copytree(batch.root, tmp_path / "catalog")
    return tmp_path


def ferv(root: Path, *args: str):
    result = CliRunner().invoke(app, ["--set", f"storage.root={root}", "annotate", *args])
    return result
