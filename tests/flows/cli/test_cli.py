import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from flows.cli import app

runner = CliRunner()


@pytest.mark.slow
def test_every_command_has_help():
    commands = [[]]
    for group in app.registered_groups:
        commands.append([group.name])
        commands += [
            [group.name, c.name or c.callback.__name__] for c in group.typer_instance.registered_commands
        ]
    commands += [[c.name or c.callback.__name__.replace("_", "-")] for c in app.registered_commands]
    for cmd in commands:
        result = runner.invoke(app, [*cmd, "--help"])
        assert result.exit_code == 0, (cmd, result.output)
        assert "Usage" in result.output


@pytest.mark.slow
def test_help_is_fast_because_heavy_imports_are_deferred():
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "flows.cli", "--help"], capture_output=True, text=True, check=True
    )
    assert "catalog" in out.stdout
    code = "import sys, flows.cli; print(sorted(m for m in ('torch','insightface','cv2','yt_dlp','prefect') if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
    assert time.perf_counter() - start < 20


def test_unknown_scene_exits_non_zero_with_the_valid_ones():
    out = subprocess.run(
        [sys.executable, "-m", "flows.cli", "scenes", "--scenario", "XX"], capture_output=True, text=True
    )
    assert out.returncode == 2
    assert "unknown scenario 'XX'" in out.stderr and "DL" in out.stderr


def test_config_show_prints_the_hash(tmp_path):
    result = runner.invoke(app, ["config", "show", "--set", f"storage.root={tmp_path}"])
    assert result.exit_code == 0, result.output
    assert "config hash:" in result.output and str(tmp_path) in result.output


def _build(tmp_path, *args):
    cmd = [sys.executable, "-m", "flows.cli", "build-candidates", "--scene", "DailyLife",
           "--set", f"storage.root={tmp_path / 'work'}", *args]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--set", "segment.max_len=.inf"], "segment.max_len: Input should be a finite number"),
        (["--target", "0"], "subsample.targets: Value error, targets must be at least 1 clip"),
        (["--no-crawl"], "scene 'DailyLife': no downloaded videos"),
        (["--no-crawl", "--source", "local:footage"], "--source 'local:footage' with --no-crawl"),
    ],
)
@pytest.mark.slow
def test_build_candidates_refuses_a_bad_request_in_one_line_before_the_flow(tmp_path, args, message):
    out = _build(tmp_path, *args)
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stderr.strip().splitlines() == [out.stderr.strip()], out.stderr  # one line, no traceback
    assert out.stderr.startswith("error: ") and message in out.stderr, out.stderr
    assert not (tmp_path / "work").exists()  # nothing ran


@pytest.mark.slow
def test_build_candidates_with_an_unknown_scene_is_one_line(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "flows.cli", "build-candidates", "--scene", "Nowhere"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 2
    assert out.stderr.startswith("error: unknown scene 'Nowhere'") and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_a_binary_config_file_names_the_file(tmp_path):
    path = tmp_path / "weights.yaml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(128, 256)))
    result = runner.invoke(app, ["config", "show", "--config", str(path)])
    assert result.exit_code != 0
    assert f"{path}: not a text file" in str(result.exception)


def test_config_options_on_the_root_command_apply_to_any_command_below_it(tmp_path):
    root = ["--preset", "demo", "--set", f"storage.root={tmp_path / 'a'}", "--set", "segment.max_len=3.5"]
    shown = runner.invoke(app, [*root, "config", "show"])
    assert shown.exit_code == 0, shown.output
    assert f"root: {tmp_path / 'a'}" in shown.output and "max_len: 3.5" in shown.output
    assert shown.output == runner.invoke(app, ["config", "show", *root]).output  # same config, same hash
    # The command's own --set comes after the root's; its explicit --preset wins.
    later = runner.invoke(app, [*root, "config", "show", "--set", f"storage.root={tmp_path / 'b'}"])
    assert f"root: {tmp_path / 'b'}" in later.output and "max_len: 3.5" in later.output
    default = runner.invoke(app, ["--preset", "demo", "config", "show", "--preset", "default"]).output
    assert default == runner.invoke(app, ["config", "show"]).output


def test_a_bad_root_override_is_a_config_error_with_exit_2(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "flows.cli", "--set", "segment.nope=1", "config", "show"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 2 and "segment.nope" in out.stderr and "Traceback" not in out.stderr


def test_exit_codes_tell_a_bad_request_from_a_failed_run():
    from flows.cli.app import exit_code

    assert exit_code(ValueError("service.recrawl: bad cron")) == 2
    assert exit_code(FileNotFoundError("batch.parquet")) == 2
    assert exit_code(ConnectionError("weights URL: download failed")) == 1  # was 2: not the user's request
    assert exit_code(RuntimeError("a bug")) is None
