import subprocess
import sys
import time

from typer.testing import CliRunner

from flows.cli import app

runner = CliRunner()


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
