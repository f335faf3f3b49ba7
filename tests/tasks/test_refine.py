"""The refine stage on candidates built from posed photos: scores per kept clip, failures as rows,
uniform frame sampling, mean aggregation, and a rerun that skips the finished part."""

from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pytest

from data_catalog.assets import asset_path
from data_catalog.io import Catalog
from data_catalog.lineage import RunContext
from data_catalog.schemas import get_manifest
from flows.config import ConfigError, load_config
from tasks.refine import RefineConfig, aggregate, entropy, refine_scene, sample_indices

SCENE = "DailyLife"


@pytest.fixture(scope="module")
def refiner():
    return RefineConfig(device="cpu").create()


def _write_face_dir(folder, n: int, photo: np.ndarray) -> None:
    """n 224x224 JPEG face crops, 00001.jpg..., each a slightly shifted window on the photo."""
    folder.mkdir(parents=True)
    for i in range(n):
        dy, dx = (i * 7) % 40, (i * 5) % 40
        crop = cv2.resize(photo[40 + dy : 424 + dy, 50 + dx : 434 + dx], (224, 224))
        cv2.imwrite(str(folder / f"{i + 1:05d}.jpg"), crop)


@pytest.fixture
def catalog(tmp_path):
    """Stage 3's output for one scene: three good kept clips, one dropped, four kept with broken crops."""
    photo = cv2.imread(str(asset_path("demo-posed-happy")))  # BGR, as cv2.imwrite expects
    crops = tmp_path / "crops"
    _write_face_dir(crops / "vid-a_0-30", 30, photo)
    _write_face_dir(crops / "vid-a_30-34", 4, photo)
    _write_face_dir(crops / "vid-d_0-12", 12, cv2.imread(str(asset_path("demo-posed-surprise"))))
    _write_face_dir(crops / "vid-b_0-20", 20, photo)
    (crops / "vid-c_10-20").mkdir()
    _write_face_dir(crops / "vid-c_20-30", 3, photo)
    (crops / "vid-c_20-30" / "00002.jpg").write_bytes(b"\xff\xd8 truncated")
    kept = {
        "vid-a_0-30": crops / "vid-a_0-30",
        "vid-a_30-34": crops / "vid-a_30-34",
        "vid-d_0-12": crops / "vid-d_0-12",
        "vid-c_0-10": crops / "vid-c_0-10",  # never written
        "vid-c_10-20": crops / "vid-c_10-20",  # empty
        "vid-c_20-30": crops / "vid-c_20-30",  # one corrupt JPEG
        "vid-c_30-40": None,
    }
    ctx = RunContext.create({"face_filter": {}}, run_id="run-faces")
    rows = [
        {
            "clip_id": cid,
            "video_id": cid.split("_")[0],
            "scene": SCENE,
            "keep": True,
            "measures": {"face_ratio": 1.0},
            "face_dir": str(d) if d else None,
            **ctx.lineage("face_filter"),
        }
        for cid, d in kept.items()
    ]
    rows.append(
        {
            "clip_id": "vid-b_0-20",
            "video_id": "vid-b",
            "scene": SCENE,
            "keep": False,
            "reason": "multi_face",
            "value": 2.0,
            "measures": {"faces": 2.0},
            "face_dir": str(crops / "vid-b_0-20"),
            **ctx.lineage("face_filter"),
        }
    )
    cat = Catalog(tmp_path / "catalog")
    table = pa.Table.from_pylist(rows, schema=get_manifest("candidates").schema)  # dicts -> map column
    cat.write("candidates", table, scene=SCENE, run_id=ctx.run_id)
    return cat


def _rgb_frames(folder, indices):
    return [cv2.cvtColor(cv2.imread(str(folder / f"{i + 1:05d}.jpg")), cv2.COLOR_BGR2RGB) for i in indices]


def test_refine_scores_each_kept_clip_and_records_broken_ones_as_failed_rows(catalog, refiner):
    ctx = RunContext.create({"refine": {}}, run_id="run-refine")
    cfg = RefineConfig(frames_per_clip=8, batch_size=6, device="cpu")
    ref = refine_scene(SCENE, cfg, ctx, catalog, refiner=refiner)
    df = catalog.read("fer_scores", scene=SCENE).set_index("clip_id")
    assert ref.rows == len(df) == 7 and "vid-b_0-20" not in df.index  # dropped clips are not scored
    failed = df[df.status == "failed"]
    assert failed.reason.to_dict() == {
        "vid-c_0-10": "face_dir_missing",
        "vid-c_10-20": "no_face_crops",
        "vid-c_20-30": "unreadable_crop",
        "vid-c_30-40": "no_face_dir",
    }
    assert failed.probs.isna().all() and failed.label.isna().all() and (failed.n_frames == 0).all()

    ok = df[df.status == "ok"]
    assert ok.n_frames.to_dict() == {"vid-a_0-30": 8, "vid-a_30-34": 4, "vid-d_0-12": 8}
    assert ok.label.to_dict() == {"vid-a_0-30": "Happy", "vid-a_30-34": "Happy", "vid-d_0-12": "Surprise"}
    folder = catalog.root.parent / "crops" / "vid-a_0-30"
    expected = refiner.predict(_rgb_frames(folder, [1, 5, 9, 13, 16, 20, 24, 28])).mean(axis=0)
    np.testing.assert_allclose(ok.probs["vid-a_0-30"], expected / expected.sum(), atol=1e-6)
    for clip_id, row in ok.iterrows():
        p = np.asarray(row.probs)
        assert p.shape == (7,) and p.sum() == pytest.approx(1.0, abs=1e-5), clip_id
        assert row.confidence == pytest.approx(p.max()) and row.entropy == pytest.approx(entropy(p), abs=1e-5)
    assert set(df.model_name) == {"mini-xception"} and set(df.device) == {"cpu"}
    assert set(df.model_version) == {refiner.version} and set(df.stage) == {"refine"}


def test_rerun_skips_the_finished_part(catalog, refiner):
    ctx = RunContext.create({"refine": {}}, run_id="run-refine")
    first = refine_scene(SCENE, RefineConfig(device="cpu"), ctx, catalog, refiner=refiner)
    mtime = Path(first.path).stat().st_mtime_ns
    # A rerun needs no model: a config whose weights do not exist would fail if it loaded one.
    again = refine_scene(SCENE, RefineConfig(model="resnet50", weights="missing.pt"), ctx, catalog)
    assert again == first and Path(again.path).stat().st_mtime_ns == mtime
    assert len(catalog.read("fer_scores", scene=SCENE)) == first.rows


def test_a_scene_without_kept_clips_writes_an_empty_part_without_loading_a_model(tmp_path):
    ctx = RunContext.create({}, run_id="run-refine")
    ref = refine_scene("Speech", RefineConfig(model="resnet50"), ctx, Catalog(tmp_path))
    assert ref.rows == 0 and Catalog(tmp_path).has_part("fer_scores", "Speech", "run-refine", "0000")


def test_frames_are_sampled_uniformly_over_the_clip():
    assert sample_indices(30, 8).tolist() == [1, 5, 9, 13, 16, 20, 24, 28]
    assert sample_indices(4, 8).tolist() == [0, 1, 2, 3]
    assert sample_indices(10, 1).tolist() == [5]


def test_aggregation_mean_and_geometric_mean():
    frames = np.array([[0.8, 0.2], [0.2, 0.8], [0.5, 0.5]])
    np.testing.assert_allclose(aggregate(frames, "mean"), [0.5, 0.5])
    confident = np.array([[0.98, 0.02], [0.6, 0.4]])
    geometric = np.sqrt([0.98 * 0.6, 0.02 * 0.4])
    np.testing.assert_allclose(aggregate(confident, "log_mean"), geometric / geometric.sum(), rtol=1e-6)
    with pytest.raises(ValueError, match="aggregation must be 'mean' or 'log_mean'"):
        aggregate(frames, "median")


def test_the_refine_config_section_validates_its_keys():
    assert load_config(overrides=["refine.frames_per_clip=4"]).refine.frames_per_clip == 4
    with pytest.raises(
        ConfigError, match="refine.model: .*unknown FER refiner 'vgg'; registered: mini-xception"
    ):
        load_config(overrides=["refine.model=vgg"])
    with pytest.raises(ConfigError, match="refine.batch_size"):
        load_config(overrides=["refine.batch_size=0"])
    with pytest.raises(ConfigError, match="refine.frame_count"):
        load_config(overrides=["refine.frame_count=3"])
