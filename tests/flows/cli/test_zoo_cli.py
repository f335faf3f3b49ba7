"""``ferv zoo``: the Table 2 listing with our parameter counts next to the README's, and the closed loop's
export command."""

import json

import pytest
import torch
from typer.testing import CliRunner

from flows.cli import app
from models.zoo import build

runner = CliRunner()


@pytest.mark.slow
def test_zoo_list_prints_ours_next_to_the_readme():
    result = runner.invoke(app, ["zoo", "list"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 17 and lines[0].split()[:3] == ["name", "paper", "name"]
    assert lines[9].split() == ["c3d", "C3D", "3D", "78.02", "78"]
    assert lines[16].split() == ["ts-vgg13-lstm", "Two-stream", "VGG13-LSTM", "two-stream", "299.89", "144"]
    # the concatenating 2D models' heads grow with the frame count; the 3D models' do not
    more = runner.invoke(app, ["zoo", "list", "--n-frames", "16", "--pattern", "r18"]).output.splitlines()
    assert more[1].split()[3] == f"{(11_205_191 + 8 * 512 * 7) / 1e6:.2f}"


@pytest.mark.slow
def test_zoo_export_refiner_writes_the_onnx_its_sidecar_and_the_overrides(tmp_path):
    torch.manual_seed(0)
    torch.save({"model": build("r18", n_frames=2).state_dict()}, tmp_path / "r18.pt")
    out = tmp_path / "refiners" / "fer_r18.onnx"
    args = ["zoo", "export-refiner", str(tmp_path / "r18.pt"), "--out", str(out), "--model", "r18"]
    result = runner.invoke(app, [*args, "--n-frames", "2"])
    assert result.exit_code == 0, result.output
    assert out.is_file() and f"--set 'refine.weights={out}'" in result.output
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["architecture"] == "r18" and sidecar["still_clip_frames"] == 2 and sidecar["size"] == 112

    torch.save(build("r18", num_classes=5, n_frames=2).state_dict(), tmp_path / "r18-5.pt")
    result = runner.invoke(
        app, ["zoo", "export-refiner", str(tmp_path / "r18-5.pt"), *args[3:], "--n-frames", "2"]
    )
    assert isinstance(result.exception, ValueError) and "no trained classifier" in str(result.exception)
    result = runner.invoke(app, ["zoo", "export-refiner", str(tmp_path / "r18.pt"), "--out", str(out)])
    assert isinstance(result.exception, ValueError) and "not a checkpoint of this architecture" in str(
        result.exception
    )  # an r18 checkpoint is no r50
