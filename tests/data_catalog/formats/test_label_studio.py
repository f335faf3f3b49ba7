"""Label Studio interop: the labelling config, task export with face boxes, annotation import."""

import json
import xml.etree.ElementTree as ET

import pandas as pd
import pytest

from data_catalog.formats.label_studio import export_tasks, import_annotations, labelling_config
from data_catalog.io import to_table
from data_catalog.schemas import get_manifest
from keywords.taxonomy import load_taxonomy
from tasks.annotate.config import AnnotateConfig
from tasks.annotate.package import package


@pytest.fixture
def batch():
    selections = pd.DataFrame(
        {"clip_id": ["v1_0-48", "v2_10-58"], "scene": ["Interview", "Interview"], "label": ["Happy", "Sad"],
         "clip_path": ["clips/Interview/v1_0-48.mp4", "clips/Interview/v2_10-58.mp4"]}
    )  # fmt: skip
    tasks = package(selections, AnnotateConfig(group_size=2, n_copies=2), "b1")
    clips = pd.DataFrame(
        {"clip_id": ["v1_0-48", "v2_10-58"], "start_frame": [0, 10], "start_time": [0.0, 0.4],
         "n_frames": [48, 48], "fps": [25.0, 25.0], "duration": [1.92, 1.92]}
    )  # fmt: skip
    faces = pd.DataFrame(
        {"clip_id": ["v2_10-58"] * 3, "frame_index": [34, 10, 22], "time": [1.36, 0.4, 0.88],
         "face_index": [0, 0, 1], "x1": [64.0, 32.0, 0.0], "y1": [36.0, 18.0, 0.0], "x2": [192.0, 96.0, 5.0],
         "y2": [180.0, 90.0, 5.0], "score": [0.9, 0.8, 0.5], "frame_width": [640] * 3, "frame_height": [360] * 3}
    )  # fmt: skip
    return tasks, clips, faces


def test_labelling_config_groups_the_26_words_under_the_7_expressions():
    tax = load_taxonomy()
    root = ET.fromstring(labelling_config())
    choices = root.find("Choices")
    assert choices.get("name") == "word" and choices.get("toName") == "video"
    groups = {
        v.find("Header").get("value"): [c.get("value") for c in v.findall("Choice")]
        for v in choices.findall("View")
    }
    assert groups == {e: list(ws) for e, ws in tax.words.items()}
    assert [c.get("value") for c in choices.findall("Choice")] == ["PASS"]
    hotkeys = [c.get("hotkey") for c in choices.iter("Choice")]
    assert len(hotkeys) == 27 == len(set(hotkeys))
    assert root.find("VideoRectangle").get("toName") == "video"


def test_export_carries_the_video_url_ids_and_face_keyframes(batch):
    tasks, clips, faces = batch
    items = json.loads(json.dumps(export_tasks(tasks, faces, clips, "http://127.0.0.1:8081/{clip_name}")))
    assert len(items) == len(tasks)
    v2 = next(i for i in items if i["data"]["clip_id"] == "v2_10-58")
    assert v2["data"]["video"] == "http://127.0.0.1:8081/v2_10-58.mp4"
    assert v2["data"]["task_id"] in set(tasks["task_id"]) and v2["data"]["fps"] == 25.0
    [region] = v2["predictions"][0]["result"]
    assert region["type"] == "videorectangle" and region["from_name"] == "box"
    seq = region["value"]["sequence"]
    assert [k["frame"] for k in seq] == [1, 25]  # face 0 only, frames from 1 at the clip's start
    assert seq[0] | {"x": seq[0]["x"]} == {
        "frame": 1, "enabled": True, "rotation": 0, "x": 5.0, "y": 5.0, "width": 10.0, "height": 20.0, "time": 0.0
    }  # fmt: skip
    assert seq[1]["time"] == pytest.approx(0.96) and seq[1]["width"] == pytest.approx(20.0)
    assert region["value"]["framesCount"] == 48
    v1 = next(i for i in items if i["data"]["clip_id"] == "v1_0-48")
    assert "predictions" not in v1  # no face rows: no prediction rather than an empty one


def test_export_without_clip_files_is_a_clear_error(batch):
    tasks, clips, faces = batch
    with pytest.raises(ValueError, match="without a clip file"):
        export_tasks(tasks.assign(clip_path=None), faces, clips)


def _annotation(ann_id, user, word, cancelled=False, control="choices"):
    value = {"choices": [word]} if control == "choices" else {"taxonomy": [["Sad", word]]}
    return {
        "id": ann_id, "completed_by": user, "was_cancelled": cancelled, "lead_time": 4.5,
        "created_at": "2026-11-20T10:00:00.000000Z", "updated_at": "2026-11-20T10:00:04.500000Z",
        "result": [{"id": "r1", "type": control, "from_name": "word", "to_name": "video", "origin": "manual",
                    "value": value}],
    }  # fmt: skip


def test_round_trip_through_label_studio_json(batch, tmp_path):
    tasks, clips, faces = batch
    exported = export_tasks(tasks, faces, clips)
    for n, item in enumerate(exported):  # what Label Studio's JSON export adds to the tasks it was given
        item["id"] = 100 + n
        item["annotations"] = [_annotation(10 * n + 1, 7, ["rage", "PASS", "sadness", "shock"][n])]
    exported[0]["annotations"].append(_annotation(999, 8, "rage", cancelled=True))
    exported[1]["annotations"].append(
        _annotation(998, {"id": 9, "email": "pr@example.org"}, "shame", control="taxonomy")
    )
    exported[2]["annotations"].append(_annotation(997, 7, "glee"))
    exported[3]["annotations"].append({"id": 996, "completed_by": 7, "result": []})
    path = tmp_path / "export.json"
    path.write_text(json.dumps(exported))
    result = import_annotations(path, tasks, annotators={"ls-7": "ca-07"}, roles={"ls-pr@example.org": "PR"})
    answers = result.answers.sort_values("answer_id").reset_index(drop=True)
    assert sorted((p.reason, p.annotation) for p in result.problems) == [
        ("cancelled", 999), ("no_word", 996), ("unknown_word", 997)
    ]  # fmt: skip
    by_task = {item["data"]["task_id"]: item for item in exported}
    assert len(answers) == 5
    for row in answers.itertuples():
        item = by_task[row.task_id]
        assert (row.clip_id, row.group_id, row.copy) == (
            item["data"]["clip_id"],
            item["data"]["group_id"],
            item["data"]["copy"],
        )
    ca = answers[answers["annotator_id"] == "ca-07"].set_index("task_id")
    assert [ca.at[t["data"]["task_id"], "word"] for t in exported] == ["rage", "PASS", "sadness", "shock"]
    labels = [ca.at[t["data"]["task_id"], "label"] for t in exported]
    assert [None if pd.isna(v) else v for v in labels] == ["Angry", None, "Sad", "Surprise"]
    pr = answers[answers["role"] == "PR"].iloc[0]
    assert (pr["annotator_id"], pr["word"], pr["label"]) == ("ls-pr@example.org", "shame", "Sad")
    assert (answers["source"] == "label_studio").all() and (answers["time_spent_s"] == 4.5).all()
    assert str(answers["answered_at"].iloc[0]) == "2026-11-20 10:00:04.500000+00:00"
    lineage = {
        "run_id": "b1",
        "config_hash": "x",
        "stage": "s",
        "tool_versions": "{}",
        "created_at": pd.Timestamp.now(tz="UTC"),
    }
    assert to_table(get_manifest("answers"), answers.assign(**lineage)).num_rows == 5  # fits the manifest


def test_unknown_tasks_are_reported_and_bad_files_are_clear_errors(batch, tmp_path):
    tasks, _, _ = batch
    result = import_annotations(
        [{"id": 1, "data": {"task_id": "nope"}, "annotations": [_annotation(5, 1, "rage")]}], tasks
    )
    assert result.answers.empty and [p.reason for p in result.problems] == ["unknown_task"]
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not a readable Label Studio JSON export"):
        import_annotations(bad, tasks)
