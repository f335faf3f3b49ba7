"""The baseline zoo (paper, section 4.2, Table 2): every model runs forward and backward on a small
clip and has the paper's input shapes, parameter counts are pinned, and the registry's, checkpoints' and
inputs' errors are clear."""

import pytest
import torch
import torch.nn.functional as F

from models.zoo import TABLE2, build, list_models, param_count
from models.zoo.lstm import BNLSTM

NAMES = [e.name for e in TABLE2]
#: Builds that allocate 130M+ parameters, or two networks: seconds each on a CPU.
HEAVY = {"vgg13", "vgg16", "vgg13-lstm", "vgg16-lstm", "ts-c3d", "ts-vgg13-lstm"}

#: Trainable parameters at num_classes=7, n_frames=8 (the concatenating 2D models' heads grow with T).
PINNED = {
    "r18": 11_205_191,
    "r50": 23_622_727,
    "vgg13": 129_180_231,
    "vgg16": 134_489_927,
    "r18-lstm": 17_489_479,
    "r50-lstm": 36_112_455,
    "vgg13-lstm": 149_943_879,
    "vgg16-lstm": 155_253_575,
    "c3d": 78_024_455,
    "i3d": 12_294_439,
    "r3d-18": 33_169_863,
    "ts-c3d": 156_048_903,
    "ts-i3d": 24_588_871,
    "ts-r3d-18": 66_339_719,
    "ts-r18-lstm": 34_978_951,
    "ts-vgg13-lstm": 299_887_751,
}


def test_table2_is_the_registry_in_the_papers_order():
    assert sorted(NAMES) == list_models() and len(NAMES) == 16
    assert [e.family for e in TABLE2] == ["2D"] * 4 + ["2D+LSTM"] * 4 + ["3D"] * 3 + ["two-stream"] * 5
    assert [e.paper_name for e in TABLE2[:3]] == ["R18", "R50", "VGG13"]
    assert TABLE2[-1].paper_name == "Two-stream VGG13-LSTM"
    assert list_models("ts-*") == ["ts-c3d", "ts-i3d", "ts-r18-lstm", "ts-r3d-18", "ts-vgg13-lstm"]


@pytest.mark.slow
def test_parameter_counts_are_pinned_and_reported_next_to_the_readme():
    ours = {e.name: param_count(e.name) for e in TABLE2}
    print(f"\n{'model':<22}{'ours (M)':>10}{'README (M)':>12}")
    for e in TABLE2:
        print(f"{e.paper_name:<22}{ours[e.name] / 1e6:>10.2f}{e.readme_params:>12.0f}")
    assert ours == PINNED
    # where the README's count follows the original architecture, ours lands on it
    for name in ("vgg13", "vgg16", "c3d", "i3d", "r3d-18", "ts-i3d", "ts-r3d-18"):
        readme = next(e.readme_params for e in TABLE2 if e.name == name)
        assert abs(ours[name] / 1e6 - readme) / readme < 0.06, name


@pytest.mark.parametrize("name", NAMES)
def test_output_shape_at_the_papers_input_sizes(name):
    """Faces 112x112 and scenes 112x168 (section 4.1) at 16 frames, shapes only (meta tensors)."""
    with torch.device("meta"):
        model = build(name, num_classes=7, n_frames=16)
        logits = model(torch.empty(3, 3, 16, 112, 112), torch.empty(3, 3, 16, 112, 168))
    assert logits.shape == (3, 7)
    assert model.streams == (("face", "scene") if name.startswith("ts-") else ("face",))


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in NAMES]
)
@pytest.mark.slow
def test_forward_and_backward_on_a_small_clip(name):
    """Two clips of two frames, 32x32 faces and 32x48 scenes (small so VGG16 and I3D stay fast on a CPU):
    finite logits of the right shape, and every parameter gets a finite gradient."""
    torch.manual_seed(0)
    model = build(name, num_classes=5, n_frames=2)
    face, scene = torch.randn(2, 3, 2, 32, 32), torch.randn(2, 3, 2, 32, 48)
    logits = model(face, scene)
    assert logits.shape == (2, 5) and torch.isfinite(logits).all()
    F.cross_entropy(logits, torch.tensor([0, 3])).backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert no_grad == []


def test_one_stream_models_ignore_the_scene_and_two_stream_models_need_it():
    """In train mode (batch statistics, no dropout): an untrained network's eval-mode batch norm has no
    statistics yet, and its output barely depends on the input."""
    torch.manual_seed(0)
    face, scene = torch.randn(2, 3, 2, 32, 32), torch.randn(2, 3, 2, 32, 48)
    one = build("i3d", n_frames=2, dropout=0.0).train()
    two = build("ts-i3d", n_frames=2, dropout=0.0).train()
    with torch.no_grad():
        assert torch.equal(one(face), one(face, scene))
        with pytest.raises(ValueError, match="scene"):
            two(face)
        assert not torch.allclose(two(face, scene), two(face, scene.flip(0)))  # the scene is read


def test_frame_order_matters_to_the_temporal_models():
    torch.manual_seed(0)
    face = torch.randn(2, 3, 3, 32, 32)
    for name in ("r18", "r18-lstm"):
        model = build(name, n_frames=3, dropout=0.0).train()  # batch statistics, like both orders
        with torch.no_grad():
            assert not torch.allclose(model(face), model(face.flip(2)), atol=1e-5), name


def test_ts_prefix_builds_two_streams_of_any_one_stream_model():
    assert "ts-r18" not in list_models()
    one, two = param_count("r18", n_frames=4), param_count("ts-r18", n_frames=4)
    head = 4 * 512 * 7 + 7
    assert two == 2 * (one - head) + (2 * 4 * 512 * 7 + 7)
    with pytest.raises(ValueError, match="two-stream already"):
        build("ts-ts-i3d")


def test_bnlstm_keeps_batch_statistics_per_time_step():
    torch.manual_seed(0)
    lstm = BNLSTM(8, hidden_size=16, max_steps=3)
    x = torch.randn(32, 5, 8) + torch.arange(5.0).view(1, 5, 1) * 3  # each step its own mean
    h = lstm.train()(x)
    assert h.shape == (32, 16)
    means = lstm.bn_ih.running_mean
    assert not torch.allclose(means[0], means[1]) and not torch.allclose(means[1], means[2])
    assert torch.allclose(lstm.bn_c.weight, torch.full((16,), 0.1))  # Cooijmans et al.'s initial gain
    lstm.eval()
    assert torch.equal(lstm(x[:4]), lstm(x[:4]))  # eval: running statistics, no dependence on the batch
    assert torch.allclose(lstm(x[:4])[1], lstm(x[1:2])[0], atol=1e-6)


@pytest.mark.slow
def test_init_checkpoint_loads_everything_but_a_foreign_head(tmp_path):
    torch.manual_seed(0)
    source = build("i3d", num_classes=5, n_frames=2)
    path = tmp_path / "pretrained.pt"
    torch.save({"model": source.state_dict(), "epoch": 3}, path)
    torch.manual_seed(1)
    target = build("i3d", num_classes=7, n_frames=2, init_checkpoint=path)
    own = target.state_dict()
    for key, value in source.state_dict().items():
        if not key.startswith("head."):
            assert torch.equal(own[key], value), key
    assert own["head.weight"].shape == (7, 1024)

    torch.save(build("r3d-18", n_frames=2).state_dict(), tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a checkpoint of this architecture"):
        build("i3d", n_frames=2, init_checkpoint=tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pt"):
        build("i3d", n_frames=2, init_checkpoint=tmp_path / "junk.pt")


def test_bad_names_sizes_and_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="unknown zoo model 'r101'; registered: c3d"):
        build("r101")
    for n in (1, 17):
        with pytest.raises(ValueError, match="n_frames must be in 2..16"):
            build("i3d", n_frames=n)
    with pytest.raises(ValueError, match="num_classes"):
        build("i3d", num_classes=1)
    model = build("i3d", n_frames=4)
    with pytest.raises(
        ValueError, match=r"face: expected a float tensor \(B, 3, 4, H, W\), got .* \(2, 3, 2, 48, 48\)"
    ):
        model(torch.zeros(2, 3, 2, 48, 48))
    with pytest.raises(ValueError, match="face"):
        model(torch.zeros(2, 3, 48, 48))
    two = build("ts-i3d", n_frames=2)
    with pytest.raises(ValueError, match="scene: batch of 1 clips, face has 2"):
        two(torch.zeros(2, 3, 2, 48, 48), torch.zeros(1, 3, 2, 48, 72))
