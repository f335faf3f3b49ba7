"""Training and evaluating a real zoo model on real face crops, tiny: the loss goes down, a checkpoint is
written every epoch, a run stopped after one epoch resumes to the very weights of an uninterrupted run, a
finished run is skipped, and the evaluation scores every group of the test side."""

import pandas as pd
import pytest
import torch

from tasks.benchmark.config import BenchmarkConfig
from tasks.benchmark.data import benchmark_clips, load_labels
from tasks.benchmark.evaluate import group_scores, predict, score_rows
from tasks.benchmark.splits import build_splits, members
from tasks.benchmark.train import load_trained, train_model

pytestmark = pytest.mark.slow  # trains, detects or serves for real: seconds per test

#: Tiny: 2 frames of 64x64 faces, 2 steps of 8 clips per epoch, on the CPU. No augmentation, so three
#: epochs are enough to see the loss fall; augmentation has its own tests.
CFG = BenchmarkConfig(n_frames=2, face_size=64, epochs=3, batch_size=8, num_workers=0, lr=0.01, device="cpu",
                      augment=False)  # fmt: skip


@pytest.fixture(scope="module")
def data(demo_catalog):
    clips = benchmark_clips(load_labels(demo_catalog).frame, demo_catalog).frame
    splits = build_splits(clips)
    side = {s: clips[clips["clip_id"].isin(members(splits, "All", s)["clip_id"])] for s in ("train", "test")}
    return side["train"], side["test"]


@pytest.fixture(scope="module")
def uninterrupted(data, tmp_path_factory):
    return train_model("r18", data[0], CFG, tmp_path_factory.mktemp("r18-full"), progress=False)


@pytest.mark.slow
def test_training_reduces_the_loss_and_checkpoints_every_epoch(uninterrupted, data):
    r = uninterrupted
    assert len(data[0]) == 16 and r.epochs == 3 and len(r.step_losses) == 6
    assert r.epoch_losses[-1] < 0.7 * r.epoch_losses[0], r.epoch_losses
    state = torch.load(r.checkpoint, weights_only=True)
    assert (
        state["epoch"] == 3 and state["model_name"] == "r18" and r.n_params > 1e6 and r.streams == ("face",)
    )


@pytest.mark.slow
def test_a_stopped_run_resumes_to_the_weights_of_an_uninterrupted_one(uninterrupted, data, tmp_path):
    first = train_model("r18", data[0], CFG, tmp_path, progress=False, stop_after_epochs=1)
    assert first.epochs == 1 and torch.load(first.checkpoint, weights_only=True)["epoch"] == 1
    rest = train_model("r18", data[0], CFG, tmp_path, progress=False)
    assert rest.resumed_from == 1 and rest.epochs == 3
    assert rest.step_losses == pytest.approx(uninterrupted.step_losses, rel=1e-4)
    a = torch.load(rest.checkpoint, weights_only=True)["model"]
    b = torch.load(uninterrupted.checkpoint, weights_only=True)["model"]
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-5) for k in a)
    again = train_model("r18", data[0], CFG, tmp_path, progress=False)
    assert again.skipped and again.epoch_losses == rest.epoch_losses
    with pytest.raises(ValueError, match="checkpoint of r18 with 2 frames, not r18 with 4"):
        train_model("r18", data[0], CFG, tmp_path, n_frames=4, progress=False)


def test_evaluation_scores_each_group_of_the_test_side(uninterrupted, data):
    model, meta = load_trained(uninterrupted.checkpoint)
    preds = predict(model, data[1], CFG, device="cpu")
    assert len(preds) == 8 and preds["probs"].map(lambda p: abs(p.sum() - 1) < 1e-4).all()
    scores = group_scores(preds)
    assert set(scores) == {"overall", "scenario=DL", "scenario=SIA", "scene=Contest", "scene=DailyLife",
                           "scene=Interview", "scene=Social"}  # fmt: skip
    assert scores["overall"].n_clips == 8 and scores["scenario=DL"].n_clips == 4
    assert scores["overall"].war == pytest.approx((preds["pred"] == preds["label_index"]).mean())
    rows = score_rows(scores)
    assert rows[0]["group"] == "overall" and len(rows[0]["confusion"]) == 49 and meta["epoch"] == 3


@pytest.mark.slow
def test_init_checkpoint_starts_from_its_weights(uninterrupted, data, tmp_path):
    from tasks.benchmark.train import build_model

    model = build_model("r18", 2, init_checkpoint=uninterrupted.checkpoint)
    trained = torch.load(uninterrupted.checkpoint, weights_only=True)["model"]
    own = model.state_dict()
    assert all(torch.equal(own[k], trained[k]) for k in own)
    with pytest.raises(ValueError, match="not a checkpoint of this architecture"):
        build_model("vgg13", 2, init_checkpoint=uninterrupted.checkpoint)


@pytest.mark.slow
def test_an_lstm_trains_when_the_last_batch_holds_one_clip(data, tmp_path):
    # 9 clips at batch 8: the second batch has one clip, which batch norm cannot train on; it is skipped.
    cfg = CFG.model_copy(update={"epochs": 1})
    r = train_model("r18-lstm", data[0].head(9), cfg, tmp_path, progress=False)
    assert r.epochs == 1 and len(r.step_losses) == 1
    with pytest.raises(ValueError, match="1 training clip"):
        train_model("r18-lstm", data[0].head(1), cfg, tmp_path / "one", progress=False)


@pytest.mark.slow
def test_with_packed_frames_and_long_lived_workers_a_resumed_run_equals_an_uninterrupted_one(data, tmp_path):
    from tasks.benchmark.loader import JobLoader
    from tasks.benchmark.pack import pack_clips

    cfg = CFG.model_copy(update={"epochs": 2, "num_workers": 2, "augment": True})
    train, test = data[0].head(8), data[1]
    store = pack_clips(pd.concat([train, test]), cfg, tmp_path / "packs").store
    with JobLoader(pd.concat([train, test]), cfg, store=store) as loader:
        whole = train_model("r18", train, cfg, tmp_path / "whole", progress=False, loader=loader)
        workers = [w.pid for w in loader.loader._iterator._workers]
        model, _ = load_trained(whole.checkpoint)
        preds = predict(model, test, cfg, device="cpu", loader=loader)
        # Evaluation was served by the workers that trained: started once for the job.
        assert [w.pid for w in loader.loader._iterator._workers] == workers and len(workers) == 2
    assert len(whole.extra["epoch_seconds"]) == 2 and len(preds) == 8
    # The stopped run and its resumption share workers too: items are keyed by epoch, workers hold no state.
    with JobLoader(train, cfg.model_copy(update={"num_workers": 1}), store=store) as loader:
        first = train_model("r18", train, cfg, tmp_path / "resumed", progress=False, loader=loader,
                            stop_after_epochs=1)  # fmt: skip
        rest = train_model("r18", train, cfg, tmp_path / "resumed", progress=False, loader=loader)
    assert first.epochs == 1 and rest.resumed_from == 1 and rest.epochs == 2
    assert rest.step_losses == pytest.approx(whole.step_losses, rel=1e-4)
    a = torch.load(rest.checkpoint, weights_only=True)["model"]
    b = torch.load(whole.checkpoint, weights_only=True)["model"]
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-5) for k in a)
