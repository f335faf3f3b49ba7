"""The clip dataset over real face crops: the labels-candidates join, uniform frame sampling, the paper's
sizes, augmentation in training only (repeatable per epoch), two streams, multi-worker loading."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from data_catalog.lineage import RunContext
from data_catalog.schemas import get_manifest
from tasks.benchmark.config import BenchmarkConfig
from tasks.benchmark.data import ClipDataset, benchmark_clips, load_labels, sample_frames
from tasks.benchmark.loader import JobLoader

pytestmark = pytest.mark.slow  # trains, detects or serves for real: seconds per test


@pytest.fixture(scope="module")
def clips(demo_catalog):
    return benchmark_clips(load_labels(demo_catalog).frame, demo_catalog).frame


@pytest.mark.slow
def test_labels_join_the_candidates_crop_folders(clips, demo_footage):
    assert len(clips) == len(demo_footage) == 24
    assert set(clips["label"]) == {"Sad", "Happy"} and set(clips["label_index"]) == {3, 5}
    assert set(clips["scenario"]) == {"DL", "SIA"}
    assert clips["face_dir"].notna().all() and clips["scene_dir"].notna().all()


def test_clips_without_crops_are_left_out_and_counted(demo_catalog, tmp_path):
    labels = load_labels(demo_catalog).frame
    extra = labels.head(2).assign(clip_id=["ghost", "empty"])
    empty = tmp_path / "empty"
    empty.mkdir()
    ctx = RunContext.create({}, run_id="run-extra")
    row = {"video_id": "v", "scene": extra["scene"].iloc[1], "keep": True, "measures": {}, **ctx.lineage("x")}
    from data_catalog.io import Catalog

    cat = Catalog(tmp_path / "catalog")
    for f in demo_catalog.part_files("candidates"):
        t = pq.read_table(f)
        cat.write("candidates", t, scene=t.column("scene")[0].as_py(), run_id="run-demo", part=f.stem[5:])
    schema = get_manifest("candidates").schema
    cat.write("candidates", pa.Table.from_pylist([{**row, "clip_id": "empty", "face_dir": str(empty)}], schema=schema),
              scene=row["scene"], run_id="run-extra")  # fmt: skip
    out = benchmark_clips(__import__("pandas").concat([labels, extra]), cat)
    assert len(out.frame) == 24 and out.dropped == {"no_candidate": 1, "no_face_crops": 1}


def test_labels_from_a_file_or_a_run_and_clear_errors(demo_catalog, tmp_path):
    part = demo_catalog.part_files("labels")[0]
    assert len(load_labels(demo_catalog, labels_path=str(part)).frame) == pq.read_metadata(part).num_rows
    assert load_labels(demo_catalog, run_id="run-demo").source == "labels run run-demo"
    with pytest.raises(ValueError, match="no 'labels' rows of run 'nope'"):
        load_labels(demo_catalog, run_id="nope")
    with pytest.raises(ValueError, match="labels file not found"):
        load_labels(demo_catalog, labels_path=str(tmp_path / "missing.parquet"))
    with pytest.raises(ValueError, match="not a labels manifest"):
        load_labels(demo_catalog, labels_path=str(demo_catalog.part_files("candidates")[0]))


def test_uniform_sampling_centres_segments_and_respects_the_interval():
    assert sample_frames(16, 4).tolist() == [1, 5, 9, 13]
    assert sample_frames(3, 6).tolist() == [0, 0, 1, 1, 2, 2]  # short clips repeat frames in order
    assert sample_frames(100, 4, interval=8).tolist() == [37, 45, 53, 61]  # centred, 8 apart
    assert sample_frames(10, 4, interval=8).tolist() == sample_frames(10, 4).tolist()  # too short: segments
    rng = np.random.default_rng(0)
    for _ in range(50):
        idx = sample_frames(40, 8, rng=rng)
        assert ((idx >= np.arange(8) * 5) & (idx < np.arange(1, 9) * 5)).all()
        assert np.ptp(sample_frames(100, 4, interval=8, rng=rng)) == 24
    with pytest.raises(ValueError, match="between 2 and 16"):
        sample_frames(10, 17)


def test_items_have_the_paper_sizes_and_normalisation(clips):
    ds = ClipDataset(clips, BenchmarkConfig(n_frames=4), streams=("face", "scene"))
    item = ds[0]
    assert item["face"].shape == (3, 4, 112, 112) and item["scene"].shape == (3, 4, 112, 168)
    assert item["label"] == clips["label_index"].iloc[0] and item["face"].dtype == torch.float32
    assert -2.5 < float(item["face"].min()) < float(item["face"].max()) < 2.7
    assert torch.equal(ds[0]["face"], item["face"])  # evaluation is deterministic
    assert ClipDataset(clips, BenchmarkConfig(n_frames=4))[0]["scene"].numel() == 0  # face-only model


def test_augmentation_only_in_training_and_repeatable_per_epoch(clips):
    cfg = BenchmarkConfig(n_frames=4, flip=1.0)
    plain = ClipDataset(clips, cfg)[3]["face"]
    train = ClipDataset(clips, cfg, train=True, seed=0)
    first = train[3]["face"]
    assert not torch.allclose(first, plain)
    assert torch.equal(train[3]["face"], first)  # same seed, epoch and item: same draw (resume-safe)
    train.set_epoch(1)
    assert not torch.equal(train[3]["face"], first)
    off = ClipDataset(clips, cfg.model_copy(update={"augment": False}), train=True)
    assert ClipDataset(clips, cfg)[3]["face"].shape == off[3]["face"].shape


def test_two_stream_needs_scene_frames(clips):
    with pytest.raises(ValueError, match="needs scene frames; 1 clip"):
        ClipDataset(clips.assign(scene_dir=[None] + list(clips["scene_dir"][1:])), BenchmarkConfig(),
                    streams=("face", "scene"))  # fmt: skip
    with pytest.raises(ValueError, match="streams must be"):
        ClipDataset(clips, BenchmarkConfig(), streams=("scene",))


@pytest.mark.slow
def test_worker_processes_load_the_same_batches(clips):
    cfg = BenchmarkConfig(n_frames=2, face_size=32)
    # One batch each; closing the loader lets the worker processes shut down cleanly.
    with JobLoader(clips.head(6), cfg.model_copy(update={"num_workers": 0})) as inline:
        (one,) = list(inline.eval_batches(clips.head(6), scene=False, batch_size=6))
    with JobLoader(clips.head(6), cfg.model_copy(update={"num_workers": 2})) as workers:
        (two,) = list(workers.eval_batches(clips.head(6), scene=False, batch_size=6))
    assert torch.equal(one["face"], two["face"]) and one["label"].tolist() == two["label"].tolist()
