"""The database is made by migrations: on an empty SQLite file (and on PostgreSQL where it is installed)
they build exactly the models' schema, rerunning them is harmless, and the app works afterwards."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect

from tasks.annotate.web.db import Base, open_database, upgrade
from tests.tasks.annotate.web.conftest import BATCH, TEST_CFG, Team, answer_copy, label_gold

TABLES = {"alembic_version", "annotators", "login_sessions", "tasks", "assignments", "answers", "reviews"}


def schema_drift(engine) -> list:
    """Differences between the migrated database and the models (empty when they agree)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn), Base.metadata)


def current_revision(engine) -> str | None:
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from tasks.annotate.web.db import MIGRATIONS_DIR

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(cfg).get_current_head()


def test_migration_builds_the_models_schema_on_an_empty_sqlite_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    db = open_database(url)
    try:
        assert set(inspect(db.engine).get_table_names()) == TABLES
        assert schema_drift(db.engine) == []
        assert current_revision(db.engine) == head_revision()
        upgrade(url)  # a second upgrade finds nothing to do
        assert current_revision(db.engine) == head_revision()
    finally:
        db.dispose()


def test_app_works_after_migrating_an_empty_database(tmp_path):
    from tasks.annotate.web import service
    from tasks.annotate.web.app import create_app

    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    with TestClient(create_app(url, TEST_CFG)) as client:  # startup migrates the empty file
        db = open_database(url, migrate=False)
        with db.session() as s:
            _, token = service.add_annotator(s, "Ada", "PR", "pr1")
        db.dispose()
        assert client.post("/api/login", json={"token": token}).json()["role"] == "PR"
        assert client.get("/api/next", params={"queue": "gold"}).json() == {"item": None}
        vocab = client.get("/api/vocabulary").json()
        assert len(vocab["expressions"]) == 7
        assert sum(len(e["words"]) for e in vocab["expressions"]) == 26
        assert vocab["pass"] == {"word": "PASS", "key": "0"}


def test_bad_database_urls_are_named_in_the_error():
    with pytest.raises(ValueError, match="not a database URL"):
        open_database("annotate.db")
    with pytest.raises(ValueError, match="only sqlite and postgresql"):
        open_database("mysql://x@localhost/db")


# ------------------------------------------------------------------------------------------ PostgreSQL


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


@pytest.fixture(scope="module")
def postgres_url():
    """A throwaway PostgreSQL cluster on a Unix socket (seconds to start)."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("PostgreSQL is not installed (no initdb/pg_ctl): apt-get install postgresql to run this")
    pytest.importorskip("psycopg", reason="psycopg is not installed: pip install -e '.[postgres]'")
    root = Path(tempfile.mkdtemp(prefix="ferv-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: run it as the postgres user
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser: cannot start PostgreSQL as another user")
        as_user = ["runuser", "-u", "postgres", "--"]
        os.chmod(root, 0o755)
        shutil.chown(root, "postgres")
    data, sock = root / "data", root
    run = {"check": True, "capture_output": True, "timeout": 120}
    subprocess.run([*as_user, initdb, "-D", str(data), "-A", "trust", "-U", "ferv", "--no-sync"], **run)
    opts = f"-k {sock} -c listen_addresses='' -c fsync=off"
    subprocess.run(
        [*as_user, pg_ctl, "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w", "start"], **run
    )
    try:
        yield f"postgresql+psycopg://ferv@/postgres?host={sock}"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def test_postgresql_migrates_and_runs_the_workflow(postgres_url, batch):
    from tasks.annotate.web import service
    from tasks.annotate.web.app import create_app
    from tasks.annotate.web.manifests import read_batch

    db = open_database(postgres_url)
    try:
        assert set(inspect(db.engine).get_table_names()) == TABLES
        assert schema_drift(db.engine) == []
        data = read_batch(batch, BATCH)
        with db.session() as s:
            service.load_tasks(s, data.tasks, TEST_CFG, titles=data.titles, boxes=data.boxes)
        team = Team(db, create_app(db, TEST_CFG))
        ca, pr = team.add("ca1", "CA"), team.add("pr1", "PR")
        assert label_gold(pr) == 4
        states = [r["copy_state"] for r in answer_copy(ca, db, gold_right=2)]
        assert states[-1] == "pr_review"
        (review,) = pr.get("/api/pr/reviews").json()
        assert (review["verdict"], review["annotator_id"]) == ("AC", "ca1")
    finally:
        db.dispose()
