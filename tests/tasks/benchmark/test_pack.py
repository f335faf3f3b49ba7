"""The packed frame store over real crops: tensors as the JPEG path gives them up to the resize, a changed
crop folder repacked (and an old store refused), a killed pack resumed without a partial file in use."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import default_collate

from tasks.benchmark.augment import _crops_batched, _crops_looped, device_inputs
from tasks.benchmark.config import BenchmarkConfig
from tasks.benchmark.data import ClipDataset, benchmark_clips, load_labels
from tasks.benchmark.loader import JobLoader
from tasks.benchmark.pack import PackedStore, pack_clips

pytestmark = pytest.mark.slow  # real crops of the demo footage: seconds to make, then seconds per test
CFG = BenchmarkConfig(n_frames=4, flip=0.5, num_workers=0)
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def clips(demo_catalog):
    return benchmark_clips(load_labels(demo_catalog).frame, demo_catalog).frame


@pytest.fixture(scope="module")
def store(clips, tmp_path_factory):
    return pack_clips(clips.head(8), CFG, tmp_path_factory.mktemp("packs")).store


def copied(clips, folder: Path, n: int):
    """The first ``n`` clips with their crop folders copied under ``folder`` (free to change)."""
    rows = clips.head(n).copy()
    for col in ("face_dir", "scene_dir"):
        rows[col] = [str(shutil.copytree(d, folder / col / Path(d).name)) for d in rows[col]]
    return rows


def test_packed_frames_are_stored_with_the_crop_margin(store, clips):
    face = store.frames(clips["clip_id"].iloc[0], "face")
    assert face.dtype == "uint8" and face.shape == (10, 140, 140, 3)  # 112 / 0.8: the random crop's margin
    assert store.frames(clips["clip_id"].iloc[0], "scene").shape == (10, 140, 210, 3)


@pytest.mark.parametrize("train", [False, True], ids=["evaluation", "training"])
def test_packed_tensors_equal_the_jpeg_path_up_to_the_resize(clips, store, train):
    jpeg = ClipDataset(clips.head(8), CFG, train=train, streams=("face", "scene"))
    packed = ClipDataset(clips.head(8), CFG, train=train, streams=("face", "scene"), store=store)
    a = default_collate([jpeg[i] for i in range(8)])
    b = default_collate([packed[i] for i in range(8)])
    assert b["face"].dtype == torch.uint8 and b["aug"].shape == (8, 6)
    face, scene = device_inputs(b, CFG, "cpu", scene=True)
    assert face.shape == a["face"].shape == (8, 3, 4, 112, 112) and scene.shape == a["scene"].shape
    # The documented difference: INTER_AREA to 140 px then a bilinear resize of the crop, instead of one
    # INTER_AREA resize from 224 px. One grey level is 1 / (255 * 0.225) = 0.017 normalised: on average the
    # two paths differ by two to four levels, and the pictures agree.
    for mine, theirs in ((face, a["face"]), (scene, a["scene"])):
        assert (mine - theirs).abs().mean() < (0.05 if not train else 0.08)
        assert torch.corrcoef(torch.stack([mine.flatten(), theirs.flatten()]))[0, 1] > 0.99


def test_the_gpu_crops_of_a_whole_batch_equal_the_per_clip_crops(clips, store):
    """On a GPU a batch's crops are one roi_align (averaged bilinear samples) instead of a resize per clip
    (a triangle filter): on real frames and training draws (crops, flips) the two differ by under one grey
    level on average, and flips and boxes land in the same places."""
    packed = ClipDataset(clips.head(8), CFG, train=True, streams=("face",), store=store)
    b = default_collate([packed[i] for i in range(8)])
    assert 0 < int((b["aug"][:, 5] > 0.5).sum()) < 8 and (b["aug"][:, 0] < 1).all()  # flips and crops drawn
    looped = _crops_looped(b["face"], b["aug"], (112, 112))
    batched = _crops_batched(b["face"], b["aug"], (112, 112))
    assert batched.shape == looped.shape == (8, 3, 4, 112, 112)
    diff = (batched - looped).abs()
    assert diff.mean() < 1.0 and diff.amax(dim=(1, 2, 3, 4)).lt(64).all()
    assert torch.corrcoef(torch.stack([batched.flatten(), looped.flatten()]))[0, 1] > 0.999


def test_a_changed_crop_folder_is_repacked_and_an_old_store_refused(clips, tmp_path):
    rows = copied(clips, tmp_path / "crops", 4)
    first = pack_clips(rows, CFG, tmp_path / "packs")
    assert first.n_decoded == 4 and pack_clips(rows, CFG, tmp_path / "packs").n_decoded == 0
    changed = rows["clip_id"].iloc[1]
    frames = sorted(Path(rows["face_dir"].iloc[1]).glob("*.jpg"))
    frames[0].write_bytes(frames[-1].read_bytes())  # a crop redone: other pixels, a new modification time
    with pytest.raises(ValueError, match=f"the crops of clip '{changed}' changed since it was packed"):
        PackedStore(first.store.index_path).check(rows)
    with pytest.raises(ValueError, match="changed since it was packed; run `ferv benchmark pack`"):
        JobLoader(rows, CFG, store=first.store)
    second = pack_clips(rows, CFG, tmp_path / "packs")
    assert second.n_decoded == 1 and second.store.index_path != first.store.index_path
    assert (second.store.frames(changed, "face")[0] == second.store.frames(changed, "face")[-1]).all()
    assert not (first.store.frames(changed, "face")[0] == first.store.frames(changed, "face")[-1]).all()
    second.store.check(rows)
    with pytest.raises(ValueError, match="clip '.*' is not in it"):
        second.store.check(copied(clips.iloc[4:], tmp_path / "more", 1))
    with pytest.raises(ValueError, match="holds face140x140-scene140x210, the config needs face80x80"):
        second.store.check(rows, CFG.model_copy(update={"face_size": 64}))


KILLED_PACK = """
import os, signal, sys
import pandas as pd
from tasks.benchmark.config import BenchmarkConfig
from tasks.benchmark.pack import pack_clips

def progress(done, total):
    if done == 3:
        os.kill(os.getpid(), signal.SIGKILL)

pack_clips(pd.read_parquet(sys.argv[1]), BenchmarkConfig(n_frames=4), sys.argv[2], progress=progress)
"""


def test_a_killed_pack_resumes_and_leaves_no_partial_file_in_use(clips, tmp_path):
    rows = clips.head(6)
    rows.to_parquet(tmp_path / "clips.parquet")
    root = tmp_path / "packs"
    run = subprocess.run([sys.executable, "-c", KILLED_PACK, str(tmp_path / "clips.parquet"), str(root)],
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True)  # fmt: skip
    assert run.returncode == -9, run.stderr
    (geometry,) = root.iterdir()
    assert not list(geometry.glob("stores/*.json"))  # no index: nothing uses the unfinished pack
    assert len(list(geometry.glob("arrays/*.npy"))) == 6  # three clips, face and scene each
    partial = geometry / "arrays" / ".x.face.npy.abc.tmp"  # what a kill during a write leaves
    partial.write_bytes(b"\x93NUMPY half")
    resumed = pack_clips(rows, CFG, root)
    assert resumed.n_clips == 6 and resumed.n_decoded == 3
    index = resumed.store.check(rows, CFG).clips
    used = {e[s] for e in index.values() for s in ("face", "scene")}
    assert len(used) == 12 and all((geometry / "arrays" / name).is_file() for name in used)
    assert partial.name not in used
    item = ClipDataset(rows, CFG, store=resumed.store)[5]
    assert item["face"].shape == (4, 140, 140, 3)
