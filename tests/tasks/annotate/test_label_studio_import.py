"""Labels made in Label Studio land: imports add idempotently, copies are scored, bad exports are named."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from data_catalog.formats.label_studio import export_tasks
from data_catalog.io import Catalog
from data_catalog.lineage import RunContext
from flows.cli import app
from tasks.annotate.config import AnnotateConfig
from tasks.annotate.package import package

BATCH = "ls1"
SETS = [
    "--set", "annotate.group_size=4", "--set", "annotate.gold_fraction=0.75", "--set", "annotate.n_copies=2",
]  # fmt: skip
WORD = {"Happy": "cheerfulness", "Sad": "sadness", "Angry": "rage", "Fear": "horror"}


@pytest.fixture
def project(tmp_path) -> tuple[Path, pd.DataFrame, list[dict]]:
    """A storage root with one packaged batch (4 clips: one group of 4, 3 gold items, 2 copies) and its
    Label Studio tasks."""
    labels = ["Happy", "Sad", "Angry", "Fear"]
    selections = pd.DataFrame(
        {
            "clip_id": [f"v{i}_0-48" for i in range(4)],
            "scene": ["Interview"] * 4,
            "label": labels,
            "clip_path": [f"clips/Interview/v{i}_0-48.mp4" for i in range(4)],
        }
    )
    cfg = AnnotateConfig(group_size=4, gold_fraction=0.75, n_copies=2)
    tasks = package(selections, cfg, BATCH)
    catalog = Catalog(tmp_path / "catalog")
    lineage = RunContext.create({"annotate": {}}, run_id=BATCH).lineage("annotate.package")
    catalog.write("annotation_tasks", tasks.assign(**lineage), scene="Interview", run_id=BATCH)
    items = export_tasks(
        tasks, pd.DataFrame(columns=["clip_id", "face_index"]), pd.DataFrame(columns=["clip_id"])
    )
    for n, item in enumerate(items):
        item["id"] = 500 + n
    return tmp_path, tasks, items


def _annotation(ann_id: int, user: int, word: str) -> dict:
    return {
        "id": ann_id, "completed_by": user, "was_cancelled": False, "lead_time": 3.0,
        "created_at": "2026-11-20T10:00:00Z", "updated_at": f"2026-11-20T10:{ann_id % 60:02d}:00Z",
        "result": [{"type": "choices", "from_name": "word", "to_name": "video", "value": {"choices": [word]}}],
    }  # fmt: skip


def _export(path: Path, items: list[dict], answers: dict[tuple[int, int], str]) -> Path:
    """Label Studio's JSON export of ``items`` with ``(item index, user) -> word`` annotations."""
    out = []
    for n, item in enumerate(items):
        anns = [_annotation(1000 * user + n, user, w) for (i, user), w in answers.items() if i == n]
        out.append({**item, "annotations": anns})
    path.write_text(json.dumps(out))
    return path


def ferv(root: Path, *args: str):
    return CliRunner().invoke(app, ["--set", f"storage.root={root}", *SETS, "annotate", *args])


def _truth(tasks: pd.DataFrame) -> dict[str, str]:
    return dict(zip(tasks["clip_id"], tasks["predicted_label"], strict=False))


@pytest.mark.slow
def test_label_studio_answers_are_scored_and_land(project):
    root, tasks, items = project
    truth = _truth(tasks)
    gold = {n for n, it in enumerate(items) if tasks.set_index("task_id").at[it["data"]["task_id"], "gold"]}
    copy1 = [n for n, it in enumerate(items) if it["data"]["copy"] == 0]
    pr = {(n, 9): WORD[truth[items[n]["data"]["clip_id"]]] for n in gold}  # the PR labels the gold items
    ca = {(n, 7): WORD[truth[items[n]["data"]["clip_id"]]] for n in copy1}  # a CA labels copy 0 right
    first = _export(root / "first.json", items, {**pr, **ca})
    r = ferv(root, "label-studio", "import", str(first), "--batch", BATCH, "--pr", "ls-9")
    assert r.exit_code == 0, r.output
    assert f"{len(pr) + len(ca)} new answers, 0 already imported" in r.output
    assert "finished copies: 1 AC; 0 not finished yet" in r.output
    checks = Catalog(root / "catalog").read("group_checks")
    assert checks[["copy", "verdict", "pr_decision", "reviewer_id"]].values.tolist() == [
        [0, "AC", "accept", "flag-recapture"]
    ]
    r = ferv(root, "land", "--batch", BATCH)
    assert r.exit_code == 0, r.output
    labels = Catalog(root / "catalog").read("labels")
    assert dict(zip(labels["clip_id"], labels["label"], strict=True)) == truth  # every clip, not only gold

    again = ferv(root, "label-studio", "import", str(first), "--batch", BATCH, "--pr", "ls-9")
    assert again.exit_code == 0, again.output
    assert f"0 new answers, {len(pr) + len(ca)} already imported" in again.output

    # A second export of the same batch and round (another CA, copy 1) adds; the first import stays.
    copy2 = [n for n, it in enumerate(items) if it["data"]["copy"] == 1]
    second = _export(root / "second.json", items, {(n, 8): "PASS" for n in copy2})
    r = ferv(root, "label-studio", "import", str(second), "--batch", BATCH)
    assert r.exit_code == 0, r.output
    answers = Catalog(root / "catalog").read("answers", run_id=BATCH)
    assert len(answers) == len(pr) + len(ca) + len(copy2) and answers["answer_id"].is_unique
    checks = Catalog(root / "catalog").read("group_checks").sort_values("copy")
    assert checks["verdict"].tolist() == ["AC", "UA"] and checks["estimate"].notna().all()


def test_exports_without_annotations_are_named_errors(project, tmp_path):
    root, _, items = project
    minimal = tmp_path / "min.json"  # JSON_MIN: the task's data and the chosen word, no 'annotations'
    minimal.write_text(json.dumps([{"id": 1, **it["data"], "word": "joy", "annotator": 7} for it in items]))
    r = ferv(root, "label-studio", "import", str(minimal), "--batch", BATCH)
    assert r.exit_code != 0
    assert str(minimal) in str(r.exception) and "JSON_MIN" in str(r.exception)
    unlabelled = tmp_path / "tasks.json"
    unlabelled.write_text(json.dumps([{**it, "annotations": []} for it in items]))
    r = ferv(root, "label-studio", "import", str(unlabelled), "--batch", BATCH)
    assert r.exit_code != 0 and "none of its 8 tasks has an annotation" in str(r.exception)
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    r = ferv(root, "label-studio", "import", str(empty), "--batch", BATCH)
    assert r.exit_code != 0 and "an empty list of tasks" in str(r.exception)
    assert Catalog(root / "catalog").read("answers").empty
