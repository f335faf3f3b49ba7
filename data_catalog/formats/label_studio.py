"""Label Studio interop: export annotation tasks, import annotations back as ``answers`` rows.

Paper, section 3.2 and Figure 3(d): one clip, the face box on every frame, the 26 fine-grained words under
the 7 expressions plus PASS. For teams that label in Label Studio instead of the project's web app:

- :func:`labelling_config` is the labelling interface (XML): the video, a ``VideoRectangle`` for the face
  box, and one ``Choices`` (``word``) with the words grouped under a header per expression, PASS first.
- :func:`export_tasks` writes one Label Studio task per ``annotation_tasks`` row: ``data.video`` (the
  clip's URL from ``url_template``), the task's ids and scene, and a prediction carrying the face box of
  every sampled frame (``faces``, face 0) as a ``videorectangle`` keyframe sequence, in percent of the
  frame, frames counted from 1 at the clip's first frame (Label Studio interpolates between keyframes).
- :func:`import_annotations` reads Label Studio's JSON export and returns ``answers`` rows (source
  ``label_studio``). An annotation that is cancelled, has no word, or a word outside the vocabulary, or
  belongs to an unknown task is not an answer: it is listed in ``problems`` with a snake_case reason.

    >>> tasks_json = export_tasks(tasks, faces, clips, url_template="http://127.0.0.1:8081/{clip_name}")  # doctest: +SKIP
    >>> result = import_annotations(json.loads(Path("export.json").read_text()), tasks)                 # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from xml.sax.saxutils import quoteattr

import pandas as pd

from data_catalog.io import Catalog
from keywords.taxonomy import Taxonomy, load_taxonomy

PASS = "PASS"
SOURCE = "label_studio"
WORD_CONTROL = "word"
BOX_CONTROL = "box"
VIDEO_OBJECT = "video"
MODEL_VERSION = "ferv-faces"
#: Label Studio's local-files URL of a clip, relative to its ``LOCAL_FILES_DOCUMENT_ROOT`` (the storage root).
DEFAULT_URL = "/data/local-files/?d={clip_relpath}"


def labelling_config(taxonomy: Taxonomy | None = None) -> str:
    """The Label Studio labelling config: video + face box + the words grouped by expression + PASS."""
    tax = taxonomy or load_taxonomy()
    keys = iter("123456789qwertyuiopasdfghjklzxcvbnm")  # 0 is PASS
    lines = [
        "<View>",
        '  <Header value="$scene"/>',
        f'  <Video name="{VIDEO_OBJECT}" value="$video" framerate="$fps"/>',
        f'  <VideoRectangle name="{BOX_CONTROL}" toName="{VIDEO_OBJECT}"/>',
        f'  <Choices name="{WORD_CONTROL}" toName="{VIDEO_OBJECT}" choice="single-radio" required="true">',
        f'    <Choice value="{PASS}" hotkey="0" hint="Cannot tell, or no single face"/>',
    ]
    for expression in tax.expressions:
        lines.append(f'    <View><Header value={quoteattr(expression)} size="5"/>')
        hint = quoteattr(tax.expression_descriptions[expression])
        for word in tax.words[expression]:
            lines.append(f'      <Choice value={quoteattr(word)} hotkey="{next(keys)}" hint={hint}/>')
        lines.append("    </View>")
    lines += ["  </Choices>", "</View>"]
    return "\n".join(lines) + "\n"


def _keyframes(boxes: pd.DataFrame, clip: Mapping[str, object]) -> list[dict]:
    """Face-0 boxes of one clip as Label Studio keyframes (percent of the frame, frames from 1)."""
    out = []
    for b in boxes.sort_values("frame_index").itertuples():
        width, height = float(b.frame_width), float(b.frame_height)
        out.append(
            {
                "frame": int(b.frame_index) - int(clip["start_frame"]) + 1,
                "enabled": True,
                "rotation": 0,
                "x": 100 * float(b.x1) / width,
                "y": 100 * float(b.y1) / height,
                "width": 100 * float(b.x2 - b.x1) / width,
                "height": 100 * float(b.y2 - b.y1) / height,
                "time": round(float(b.time) - float(clip["start_time"]), 6),
            }
        )
    return out


def export_tasks(
    tasks: pd.DataFrame,
    faces: pd.DataFrame,
    clips: pd.DataFrame,
    url_template: str = DEFAULT_URL,
    catalog: Catalog | None = None,
) -> list[dict]:
    """Label Studio tasks for ``annotation_tasks`` rows (see the module docstring). ``url_template`` may
    use ``{clip_path}`` (absolute), ``{clip_relpath}`` (relative to the storage root, which is what Label
    Studio's ``LOCAL_FILES_DOCUMENT_ROOT`` should be), ``{clip_name}`` (the file name) and ``{clip_id}``.
    Stored clip paths are resolved through ``catalog`` (:meth:`Catalog.resolve_path`), never against the
    working directory. A task whose clip has no ``clip_path`` is an error naming the clip (package after
    the clips are encoded)."""
    missing = tasks.loc[tasks["clip_path"].isna(), "clip_id"].unique().tolist()
    if missing:
        raise ValueError(f"annotation tasks without a clip file (clip_path): {missing[:5]}")
    clip_rows = clips.drop_duplicates("clip_id").set_index("clip_id")
    face0 = faces[faces["face_index"] == 0] if len(faces) else faces
    by_clip = {c: rows for c, rows in face0.groupby("clip_id")} if len(face0) else {}
    out = []
    for t in tasks.sort_values(["group_id", "copy", "position"]).itertuples():
        path = catalog.resolve_path(t.clip_path) if catalog is not None else Path(t.clip_path)
        root = catalog.storage_root if catalog is not None else Path.cwd()
        relpath = os.path.relpath(path, root) if path.is_absolute() else str(path)
        data = {
            "video": url_template.format(
                clip_path=path.as_posix(),
                clip_relpath=Path(relpath).as_posix(),
                clip_name=path.name,
                clip_id=t.clip_id,
            ),
            "task_id": t.task_id,
            "batch_id": t.batch_id,
            "group_id": t.group_id,
            "copy": int(t.copy),
            "position": int(t.position),
            "clip_id": t.clip_id,
            "scene": t.scene,
        }
        item: dict = {"data": data}
        if t.clip_id in clip_rows.index:
            clip = clip_rows.loc[t.clip_id]
            data["fps"] = float(clip["fps"])
            frames = _keyframes(by_clip[t.clip_id], clip) if t.clip_id in by_clip else []
            if frames:
                score = float(by_clip[t.clip_id]["score"].mean())
                value = {
                    "framesCount": int(clip["n_frames"]),
                    "duration": float(clip["duration"]),
                    "sequence": frames,
                    "labels": ["face"],
                }
                region = {
                    "id": f"face-{t.clip_id}"[:64],
                    "type": "videorectangle",
                    "from_name": BOX_CONTROL,
                    "to_name": VIDEO_OBJECT,
                    "origin": "prediction",
                    "value": value,
                }
                item["predictions"] = [{"model_version": MODEL_VERSION, "score": score, "result": [region]}]
        out.append(item)
    return out


@dataclass(frozen=True)
class ImportProblem:
    """An annotation that did not become an answer, and why (snake_case)."""

    ls_task: object
    annotation: object
    reason: str
    detail: str = ""


@dataclass(frozen=True)
class ImportResult:
    answers: pd.DataFrame  # ``answers`` rows, lineage not yet added
    problems: list[ImportProblem] = field(default_factory=list)


def _annotator(completed_by: object) -> str:
    """Label Studio's ``completed_by`` (an id, or a user object in some exports) -> an annotator id."""
    if isinstance(completed_by, dict):
        completed_by = completed_by.get("email") or completed_by.get("id")
    return f"ls-{completed_by}"


def _word(result: Sequence[Mapping]) -> str | None:
    for region in result or []:
        if region.get("from_name") != WORD_CONTROL:
            continue
        value = region.get("value") or {}
        if value.get("choices"):
            return str(value["choices"][0])
        if value.get("taxonomy"):  # a Taxonomy control: [[expression, word]]
            return str(value["taxonomy"][0][-1])
    return None


def _time(text: object) -> datetime:
    if not text:
        return datetime.now(timezone.utc)
    stamp = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)


def _check_full_export(export: Sequence[object], source: str) -> None:
    """Refuse what is not Label Studio's full JSON export, naming the file and the format expected: an
    empty list, a list of non-objects, or tasks without ``annotations`` (JSON_MIN, or tasks exported before
    anyone labelled them) would otherwise import nothing and look like success."""
    expected = "expected Label Studio's 'JSON' export: a list of tasks, each with its 'annotations'"
    if not export:
        raise ValueError(f"{source}: an empty list of tasks; {expected}")
    if not all(isinstance(t, Mapping) for t in export):
        raise ValueError(f"{source}: not a list of task objects; {expected}")
    if not any("annotations" in t for t in export):
        keys = sorted({k for t in export[:20] for k in t})
        hint = " (this looks like the JSON_MIN export)" if "annotations" not in keys and "id" in keys else ""
        raise ValueError(f"{source}: no task has 'annotations' (keys: {keys}){hint}; {expected}")
    if not any(t.get("annotations") for t in export):
        raise ValueError(f"{source}: none of its {len(export)} tasks has an annotation yet; {expected}")


def import_annotations(
    export: Sequence[Mapping] | str | os.PathLike,
    tasks: pd.DataFrame,
    annotators: Mapping[str, str] | None = None,
    roles: Mapping[str, str] | None = None,
    round_: int = 1,
    taxonomy: Taxonomy | None = None,
) -> ImportResult:
    """Label Studio's JSON export (a list of tasks with ``annotations``, or its file) -> ``answers`` rows.

    ``annotators`` maps Label Studio users (``ls-<id>`` or ``ls-<email>``) to project annotator ids,
    ``roles`` annotator ids to ``'CA'`` / ``'PR'`` (default CA); ``round_`` is the round the answers
    belong to."""
    source = "the Label Studio export"
    if not isinstance(export, list | tuple):
        path = Path(export)
        source = str(path)
        try:
            export = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: not a readable Label Studio JSON export: {exc}") from None
        if not isinstance(export, list):
            raise ValueError(f"{path}: expected a JSON list of tasks, got {type(export).__name__}")
    _check_full_export(export, source)
    tax = taxonomy or load_taxonomy()
    word_label = tax.word_to_expression
    known = tasks.set_index("task_id")
    rows: list[dict] = []
    problems: list[ImportProblem] = []
    for ls_task in export:
        ls_id = ls_task.get("id")
        task_id = (ls_task.get("data") or {}).get("task_id")
        for ann in ls_task.get("annotations") or []:
            ann_id = ann.get("id")
            if task_id not in known.index:
                problems.append(ImportProblem(ls_id, ann_id, "unknown_task", str(task_id)))
                continue
            if ann.get("was_cancelled"):
                problems.append(ImportProblem(ls_id, ann_id, "cancelled"))
                continue
            word = _word(ann.get("result"))
            if word is None:
                problems.append(ImportProblem(ls_id, ann_id, "no_word"))
                continue
            if word != PASS and word not in word_label:
                problems.append(ImportProblem(ls_id, ann_id, "unknown_word", word))
                continue
            who = _annotator(ann.get("completed_by"))
            who = (annotators or {}).get(who, who)
            task = known.loc[task_id]
            rows.append(
                {
                    "answer_id": f"ls-{ls_id}-{ann_id}",
                    "task_id": task_id,
                    "batch_id": task["batch_id"],
                    "group_id": task["group_id"],
                    "copy": int(task["copy"]),
                    "clip_id": task["clip_id"],
                    "scene": task["scene"],
                    "annotator_id": who,
                    "role": (roles or {}).get(who, "CA"),
                    "round": round_,
                    "word": word,
                    "label": word_label.get(word),
                    "answered_at": _time(ann.get("updated_at") or ann.get("created_at")),
                    "time_spent_s": float(ann.get("lead_time") or 0.0),
                    "source": SOURCE,
                }
            )
    columns = ["answer_id", "task_id", "batch_id", "group_id", "copy", "clip_id", "scene", "annotator_id"]
    columns += ["role", "round", "word", "label", "answered_at", "time_spent_s", "source"]
    answers = pd.DataFrame(rows, columns=columns).astype({"copy": "int16", "round": "int16"})
    return ImportResult(answers, problems)
