"""The stage 2 + 3 shard runner on real footage: manifests written per shard, bad files reported and not
fatal, reruns skip finished work, the budget and the crops of finalize_scene."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from data_catalog.io import Catalog
from data_catalog.lineage import RunContext
from data_catalog.sql import query
from flows.config import load_config
from models.detectors import create_detector
from tasks.face_filter.runner import finalize_scene, process_shard

pytestmark = pytest.mark.slow  # trains, detects or serves for real: seconds per test

SCENE = "Interview"


def sections(s):
    """The config sections :func:`process_shard` takes, from the test's pipeline config."""
    return s["cfg"].segment, s["cfg"].face_filter


def finals(s, target=None):
    """:func:`finalize_scene`'s keyword arguments: the scene's target (the config's unless given)."""
    cfg = s["cfg"]
    target = cfg.subsample.target_for(SCENE) if target is None else target
    return {"target": target, "crops_dir": cfg.storage.crops_dir, "progress": False}


@pytest.fixture(scope="module")
def setup(tmp_path_factory, demo_media):
    root = tmp_path_factory.mktemp("work")
    (root / "corrupt.mp4").write_bytes(b"\x00\x01not a video at all" * 64)
    (root / "empty.mp4").write_bytes(b"")
    videos = [
        {"video_id": "local-single", "scene": SCENE, "local_path": str(demo_media("single-face"))},
        {"video_id": "local-fnf", "scene": SCENE, "local_path": str(demo_media("face-noface"))},
        {"video_id": "local-corrupt", "scene": SCENE, "local_path": str(root / "corrupt.mp4")},
        {"video_id": "local-empty", "scene": SCENE, "local_path": str(root / "empty.mp4")},
        {"video_id": "yt-x", "scene": SCENE, "local_path": None, "status": "failed"},
    ]
    # target 1 x budget_factor 1: of the clips that pass the rules, only the best one stays.
    cfg = load_config(
        overrides=[f"storage.root={root}", f"subsample.targets={{{SCENE}: 1}}", "face_filter.budget_factor=1"]
    )
    ctx = RunContext.create(cfg.model_dump(mode="json"), run_id="run-test")
    catalog = Catalog(cfg.storage.catalog_dir)
    refs = process_shard(videos, SCENE, cfg.segment, cfg.face_filter, ctx, catalog, "0000", progress=False)
    return {"root": root, "videos": videos, "cfg": cfg, "ctx": ctx, "catalog": catalog, "refs": refs}


@pytest.fixture(scope="module")
def final(setup):
    s = setup
    refs = finalize_scene(SCENE, s["cfg"].face_filter, s["ctx"], s["catalog"], **finals(s))
    return refs, s["catalog"].read("candidates", SCENE).set_index("clip_id")


@pytest.mark.slow
def test_shard_writes_its_four_parts(setup):
    refs = {r.manifest: r for r in setup["refs"]}
    assert set(refs) == {"media", "clips", "faces", "candidates"}
    assert {r.part for r in refs.values()} == {"0000"}
    assert refs["media"].rows == 5 and refs["clips"].rows == refs["candidates"].rows >= 2
    faces = setup["catalog"].read("faces", SCENE)
    assert (faces["model_version"].str.startswith("scrfd:")).all() and (faces["stage"] == "face_filter").all()


def test_bad_files_are_reported_not_fatal(setup):
    media = setup["catalog"].read("media", SCENE).set_index("video_id")
    assert media.loc["local-corrupt", ["status", "reason"]].tolist() == ["failed", "not_a_video"]
    assert media.loc["local-empty", ["status", "reason"]].tolist() == ["failed", "empty_file"]
    assert media.loc["yt-x", ["status", "reason"]].tolist() == ["failed", "not_downloaded"]
    assert media.loc["local-single", "status"] == "ok" and media.loc["local-fnf", "n_clips"] >= 2
    clips = setup["catalog"].read("clips", SCENE)
    assert set(clips["video_id"]) == {"local-single", "local-fnf"}


def test_pre_budget_candidates_carry_verdicts_and_measures(setup):
    cand = setup["catalog"].read("candidates", SCENE, latest=True)
    assert cand["rank"].isna().all()  # not ranked before finalize_scene
    assert set(cand["reason"].dropna()) == {"face_presence"}
    assert cand["keep"].sum() >= 2
    for measures in cand["measures"]:
        assert {"presence", "dominance", "yaw", "sharpness", "track_iou"} <= dict(measures).keys()


def test_rerun_skips_the_finished_shard(setup):
    s = setup
    before = {r.path: (r.rows, _mtime(r.path)) for r in s["refs"]}
    refs = process_shard(s["videos"], SCENE, *sections(s), s["ctx"], s["catalog"], "0000", progress=False)
    assert {r.path: (r.rows, _mtime(r.path)) for r in refs} == before


def test_a_video_of_another_scene_is_a_clear_error(setup):
    s = setup
    video = {**s["videos"][0], "scene": "Lecture"}
    with pytest.raises(ValueError, match="'local-single' is of scene 'Lecture'"):
        process_shard([video], SCENE, *sections(s), s["ctx"], s["catalog"], "0001", progress=False)


def test_finalize_applies_the_budget_by_quality(final, setup):
    refs, cand = final
    assert [r.part for r in refs] == ["0000"]  # the shard's part, rewritten in place: one row per clip
    counts = query(setup["catalog"], "select reason, count(*) n from candidates group by reason")
    assert counts["n"].sum() == len(cand)
    ranked = cand[cand["rank"].notna()].sort_values("rank")
    assert len(ranked) >= 2 and list(ranked["rank"]) == list(range(1, len(ranked) + 1))
    assert ranked["quality"].is_monotonic_decreasing
    best, rest = ranked.iloc[0], ranked.iloc[1:]
    assert bool(best["keep"]) and pd.isna(best["reason"])
    assert (~rest["keep"].astype(bool)).all() and (rest["reason"] == "over_budget").all()
    assert list(rest["value"]) == list(rest["rank"].astype(float))


def test_kept_clips_get_crops_that_contain_the_face(final, setup):
    _, cand = final
    kept = cand[cand["keep"]]
    clips = setup["catalog"].read("clips", SCENE).set_index("clip_id")
    detector = create_detector("scrfd")
    for clip_id, row in kept.iterrows():
        root = Path(os.path.abspath(setup["cfg"].storage.crops_dir))
        catalog = setup["catalog"]
        assert catalog.resolve_path(row["face_dir"]) == root / "faces" / SCENE / clip_id
        assert catalog.resolve_path(row["scene_dir"]) == root / "scenes" / SCENE / clip_id
        faces = sorted(p for p in catalog.resolve_path(row["face_dir"]).iterdir())
        scenes = sorted(p for p in catalog.resolve_path(row["scene_dir"]).iterdir())
        assert row["n_crops"] == len(faces) == len(scenes) == clips.loc[clip_id, "n_frames"]
        for path in (faces[0], faces[-1]):
            image = cv2.imread(str(path))[:, :, ::-1]
            assert image.shape == (224, 224, 3)
            assert len(detector.detect(np.ascontiguousarray(image))) == 1
        assert cv2.imread(str(scenes[0])).shape == (336, 504, 3)
    assert cand[~cand["keep"]]["face_dir"].isna().all()


def test_finalize_rerun_skips_existing_crops_and_gives_the_same_rows(final, setup):
    _, cand = final
    s = setup
    face_dir = setup["catalog"].resolve_path(cand[cand["keep"]]["face_dir"].iloc[0])
    first = sorted(face_dir.iterdir())[0]
    mtime = first.stat().st_mtime_ns
    finalize_scene(SCENE, s["cfg"].face_filter, s["ctx"], s["catalog"], **finals(s))
    again = s["catalog"].read("candidates", SCENE).set_index("clip_id")
    cols = ["keep", "reason", "rank", "face_dir", "n_crops"]
    assert again[cols].astype(str).equals(cand[cols].astype(str))
    assert first.stat().st_mtime_ns == mtime


def test_target_argument_overrides_the_config(setup, final):
    s = setup
    finalize_scene(SCENE, s["cfg"].face_filter, s["ctx"], s["catalog"], **finals(s, target=5))
    cand = s["catalog"].read("candidates", SCENE)
    assert "over_budget" not in set(cand["reason"].dropna())
    with pytest.raises(ValueError, match="target must be >= 1"):
        finalize_scene(SCENE, s["cfg"].face_filter, s["ctx"], s["catalog"], **finals(s, target=0))
    finalize_scene(
        SCENE, s["cfg"].face_filter, s["ctx"], s["catalog"], **finals(s)
    )  # back to the config's budget


def _mtime(path) -> int:
    return Path(path).stat().st_mtime_ns


def test_a_rerun_removes_the_crop_folders_a_killed_run_left(final, setup, killed_writer):
    _, cand = final
    s = setup
    face_dir = s["catalog"].resolve_path(cand[cand["keep"]]["face_dir"].iloc[0])
    faces = face_dir.parent
    scenes = s["catalog"].resolve_path(cand[cand["keep"]]["scene_dir"].iloc[0]).parent
    killed_writer(
        "import numpy as np\nfrom tasks.face_filter.crops import _Folder\n"
        f"for final in (Path({str(faces / 'next-clip')!r}), Path({str(scenes / 'next-clip')!r})):\n"
        "    _Folder(final).add(1, np.zeros((8, 8, 3), np.uint8), 90)\n"
    )
    (faces / f".{face_dir.name}.tmp-0a1b2c3d").mkdir()  # an earlier version's name for the same thing
    debris = [p for d in (faces, scenes) for p in d.iterdir() if p.name.startswith(".")]
    assert len(debris) == 3
    finalize_scene(SCENE, s["cfg"].face_filter, s["ctx"], s["catalog"], **finals(s))
    assert not any(p.exists() for p in debris)
    assert face_dir.is_dir() and any(face_dir.iterdir())  # finished crops are kept


def test_a_rerun_removes_the_clip_files_a_killed_encode_left(final, setup, killed_writer):
    from tasks.encode_clips import clip_file, encode_selected_clips

    _, cand = final
    s = setup
    kept = cand[cand["keep"]].index[0]
    lineage = s["ctx"].lineage("subsample")
    rows = [{"clip_id": kept, "scene": SCENE, "label": "Happy", "selected": True, "order": 0, **lineage}]
    s["catalog"].write("selections", pd.DataFrame(rows), scene=SCENE, run_id=s["ctx"].run_id, part="0000")
    out = clip_file(s["cfg"].storage.clips_dir, SCENE, kept)
    out.parent.mkdir(parents=True, exist_ok=True)
    killed_writer(
        "from data_catalog.temp_files import temp_sibling\n"
        f"temp_sibling(Path({str(out)!r}), '.mp4').write_bytes(b'the first megabyte of a clip')\n"
    )
    (out.parent / f".{out.stem}.9f8e7d6c.tmp.mp4").write_bytes(b"x")  # an earlier version's name
    debris = [p for p in out.parent.iterdir() if p.name.startswith(".")]
    assert len(debris) == 2
    encode_selected_clips(SCENE, s["ctx"], s["catalog"], s["cfg"].storage.clips_dir, progress=False)
    assert not any(p.exists() for p in debris)
    assert [p.name for p in out.parent.iterdir()] == [out.name]
    assert s["catalog"].read("selections", SCENE, s["ctx"].run_id)["clip_path"].tolist() == [
        s["catalog"].store_path(out)
    ]


def test_the_runner_takes_the_sections_it_uses_not_the_pipeline_config():
    import inspect

    from tasks.face_filter.runner import filter_video

    for fn in (process_shard, finalize_scene, filter_video):
        assert "cfg" not in inspect.signature(fn).parameters, fn.__name__
    assert {"segment", "face_filter"} <= set(inspect.signature(process_shard).parameters)
    finalize = inspect.signature(finalize_scene).parameters
    assert finalize["target"].default is inspect.Parameter.empty  # no hidden default from a whole config
    assert finalize["crops_dir"].default is inspect.Parameter.empty
