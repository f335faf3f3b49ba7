"""``ferv annotate add-annotator | load | export-answers | serve`` on a real catalog and database."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time

import httpx
import pytest

from tests.tasks.annotate.web.conftest import BATCH, ferv


@pytest.mark.slow
def test_add_load_label_and_export_from_the_command_line(project):
    from data_catalog.io import Catalog
    from tasks.annotate.config import AnnotateConfig
    from tasks.annotate.web import auth, service
    from tasks.annotate.web.db import open_database
    from tasks.annotate.web.settings import ServerSettings

    tokens = {}
    for name, role in (("ca1", "CA"), ("ca2", "CA"), ("ca3", "CA"), ("pr1", "PR")):
        r = ferv(project, "add-annotator", name.upper(), "--role", role, "--id", name)
        assert r.exit_code == 0, r.output
        tokens[name] = re.search(rf"^{name} \({role}\) token: (\S+)$", r.output, re.M).group(1)
    r = ferv(project, "load", "--batch", BATCH)
    assert r.exit_code == 0, r.output
    assert "24 tasks (24 new), 6 new copies, 6 pre-assigned to CAs" in r.output
    assert "deprecated" not in r.output
    r = ferv(project, "load", BATCH)  # loading again adds nothing; the old positional spelling still works
    assert "24 tasks (0 new), 0 new copies" in r.output
    assert "the positional BATCH is deprecated" in r.output and "use --batch" in r.output

    db = open_database(f"sqlite:///{project / 'annotate.db'}", migrate=False)
    cfg = AnnotateConfig(group_size=4, gold_fraction=0.5)
    with db.session() as s:
        pr = auth.authenticate(s, tokens["pr1"], ServerSettings())
        while item := service.next_item(s, pr, "gold"):
            service.submit_answer(s, pr, item.task_id, "shock", 1.0, cfg)
        ca = auth.authenticate(s, tokens["ca1"], ServerSettings())
        item = service.next_item(s, ca, "label")
        service.submit_answer(s, ca, item.task_id, "pride", 2.0, cfg)
    db.dispose()
    r = ferv(project, "export-answers")
    assert r.exit_code == 0, r.output
    assert "5 answers, 0 copy checks" in r.output
    answers = Catalog(project / "catalog").read("answers", run_id=BATCH)
    assert sorted(answers["word"]) == ["pride", "shock", "shock", "shock", "shock"]
    assert set(answers["stage"]) == {"annotate.web"} and set(answers["run_id"]) == {BATCH}


def test_bad_input_is_named_in_the_error(project):
    r = ferv(project, "add-annotator", "X", "--role", "boss")
    assert isinstance(r.exception, ValueError) and "role 'BOSS'" in str(r.exception)
    r = ferv(project, "load", "no-such-batch")
    assert isinstance(r.exception, ValueError)
    assert "no annotation tasks of batch 'no-such-batch'" in str(r.exception)
    r = ferv(project, "load", "--batch", BATCH, "--db", "mysql://x@localhost/db")
    assert isinstance(r.exception, ValueError) and "only sqlite and postgresql" in str(r.exception)


def test_load_needs_its_batch_once(project):
    def words(text: str) -> str:  # the usage error comes in a box, wrapped
        return " ".join(text.replace("│", " ").split())

    r = ferv(project, "load")
    assert r.exit_code == 2 and "--batch is required" in words(r.output)
    r = ferv(project, "load", "other", "--batch", BATCH)
    assert r.exit_code == 2 and "give --batch once" in words(r.output)


@pytest.mark.slow
@pytest.mark.parametrize("log_flag", [None, "--no-access-log"])
def test_serve_starts_the_page_on_a_fresh_database(tmp_path, log_flag):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    db = tmp_path / "served.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "--set", f"storage.root={tmp_path}",
         "annotate", "serve", "--db", f"sqlite:///{db}", "--port", str(port), *filter(None, [log_flag])],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stdout and proc.stdout.read()
                time.sleep(0.2)
        assert r.status_code == 200 and "Facial expression labelling" in r.text
        assert httpx.get(f"http://127.0.0.1:{port}/api/me").status_code == 401
        assert db.is_file()  # migrated at startup
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    logged = '"GET /api/me HTTP/1.1" 401' in proc.stdout.read()
    assert logged == (log_flag is None)  # one line per request, unless switched off


def test_an_all_pass_copy_exports_with_a_defined_score(project):
    """A CA who answers PASS throughout gets UA with score 0 (it was NaN, stored as NULL, and the export
    then failed half-way, after writing the answers)."""
    from data_catalog.io import Catalog
    from tasks.annotate.config import AnnotateConfig
    from tasks.annotate.web import auth, service
    from tasks.annotate.web.db import open_database
    from tasks.annotate.web.settings import ServerSettings

    tokens = {}
    for name, role in (("ca1", "CA"), ("pr1", "PR")):
        r = ferv(project, "add-annotator", name.upper(), "--role", role, "--id", name)
        tokens[name] = re.search(r"token: (\S+)$", r.output, re.M).group(1)
    assert ferv(project, "load", BATCH).exit_code == 0
    cfg = AnnotateConfig(group_size=4, gold_fraction=0.5)
    db = open_database(f"sqlite:///{project / 'annotate.db'}", migrate=False)
    with db.session() as s:
        pr = auth.authenticate(s, tokens["pr1"], ServerSettings())
        while item := service.next_item(s, pr, "gold"):
            service.submit_answer(s, pr, item.task_id, "shock", 1.0, cfg)
        ca = auth.authenticate(s, tokens["ca1"], ServerSettings())
        n = 0
        while (item := service.next_item(s, ca, "label")) and n < 4:
            service.submit_answer(s, ca, item.task_id, "PASS", 1.0, cfg)
            n += 1
    db.dispose()
    r = ferv(project, "export-answers")
    assert r.exit_code == 0, r.output
    checks = Catalog(project / "catalog").read("group_checks", run_id=BATCH)
    assert len(checks) == 1
    row = checks.iloc[0]
    assert (row["verdict"], row["estimate"], row["ci_low"], row["ci_high"]) == ("UA", 0.0, 0.0, 0.0)


def test_an_export_that_does_not_fit_writes_nothing(project):
    """Export is all or nothing: rows that do not fit a manifest leave no part behind."""
    import pandas as pd

    from data_catalog.io import Catalog, ManifestError
    from tasks.annotate.web.manifests import write_exports

    catalog = Catalog(project / "catalog")
    before = sorted(p.relative_to(catalog.root) for p in catalog.root.rglob("*.parquet"))
    answers = pd.DataFrame(
        [{"answer_id": "a1", "task_id": "t1", "batch_id": BATCH, "group_id": "g", "copy": 1, "clip_id": "c",
          "scene": "Interview", "annotator_id": "ca1", "role": "CA", "round": 1, "word": "PASS", "label": None,
          "answered_at": pd.Timestamp.now(tz="UTC"), "time_spent_s": 1.0, "source": "web"}]
    )  # fmt: skip
    checks = pd.DataFrame(
        [{"batch_id": BATCH, "group_id": "g", "copy": 1, "round": 1, "scene": "Interview", "annotator_id": "ca1",
          "n_items": 1, "n_gold": 0, "n_gold_answered": 0, "n_gold_correct": 0, "estimate": None,
          "ci_low": 0.0, "ci_high": 0.0, "verdict": "UA"}]
    )  # fmt: skip
    with pytest.raises(ManifestError, match="group_checks.estimate"):
        write_exports(catalog, answers, checks, {"annotate": {}})
    assert sorted(p.relative_to(catalog.root) for p in catalog.root.rglob("*.parquet")) == before
