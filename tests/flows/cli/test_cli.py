import subprocess
import sys
import time
from typing import Annotated

import pytest
import typer
from typer.testing import CliRunner

from flows.cli import app
from flows.cli.app import exit_code

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


@pytest.mark.slow
def test_unknown_scene_exits_non_zero_with_the_valid_ones():
    out = subprocess.run(
        [sys.executable, "-m", "flows.cli", "scenes", "--scenario", "XX"], capture_output=True, text=True
    )
    assert out.returncode == 2
    assert "unknown scenario 'XX'" in out.stderr and "DL" in out.stderr


def test_config_show_prints_the_hash(tmp_path):
    result = runner.invoke(app, ["--set", f"storage.root={tmp_path}", "config", "show"])
    assert result.exit_code == 0, result.output
    assert "config hash:" in result.output and str(tmp_path) in result.output


def _build(tmp_path, root, args):
    cmd = [sys.executable, "-m", "flows.cli", "--set", f"storage.root={tmp_path / 'work'}", *root,
           "build-candidates", "--scene", "DailyLife", *args]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "root, args, message",
    [
        (["--set", "segment.max_len=.inf"], [], "segment.max_len: Input should be a finite number"),
        ([], ["--target", "0"], "subsample.targets: Value error, targets must be at least 1 clip"),
        ([], ["--no-crawl"], "scene 'DailyLife': no downloaded videos"),
        ([], ["--no-crawl", "--source", "local:footage"], "--source 'local:footage' with --no-crawl"),
    ],
)
@pytest.mark.slow
def test_build_candidates_refuses_a_bad_request_in_one_line_before_the_flow(tmp_path, root, args, message):
    out = _build(tmp_path, root, args)
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
    result = runner.invoke(app, ["--config", str(path), "config", "show"])
    assert result.exit_code != 0
    assert f"{path}: not a text file" in str(result.exception)


def test_config_options_on_the_root_command_apply_to_any_command_below_it(tmp_path):
    root = ["--preset", "demo", "--set", f"storage.root={tmp_path / 'a'}", "--set", "segment.max_len=3.5"]
    shown = runner.invoke(app, [*root, "config", "show"])
    assert shown.exit_code == 0, shown.output
    assert f"root: {tmp_path / 'a'}" in shown.stdout and "max_len: 3.5" in shown.stdout
    assert shown.stderr == ""  # the spelling of this release: no deprecation line
    assert shown.stdout == runner.invoke(app, ["config", "show", *root]).stdout  # same config, same hash
    # The command's own --set comes after the root's; its explicit --preset wins.
    later = runner.invoke(app, [*root, "config", "show", "--set", f"storage.root={tmp_path / 'b'}"])
    assert f"root: {tmp_path / 'b'}" in later.stdout and "max_len: 3.5" in later.stdout
    default = runner.invoke(app, ["--preset", "demo", "config", "show", "--preset", "default"]).stdout
    assert default == runner.invoke(app, ["config", "show"]).stdout
    # Its --config wins over the root's.
    (tmp_path / "a.yaml").write_text("segment:\n  max_len: 2.5\n")
    (tmp_path / "b.yaml").write_text("segment:\n  max_len: 1.5\n")
    files = ["--config", str(tmp_path / "a.yaml"), "config", "show", "-c", str(tmp_path / "b.yaml")]
    assert "max_len: 1.5" in runner.invoke(app, files).stdout


def test_config_options_after_the_command_still_work_with_a_deprecation_line(tmp_path):
    after = runner.invoke(app, ["config", "show", "--preset", "demo", "--set", f"storage.root={tmp_path}"])
    assert after.exit_code == 0, after.output
    before = runner.invoke(app, ["--preset", "demo", "--set", f"storage.root={tmp_path}", "config", "show"])
    assert after.stdout == before.stdout and f"root: {tmp_path}" in after.stdout  # the values are honoured
    assert after.stderr.splitlines() == [
        "warning: --preset after the command is deprecated and goes in the next release; "
        "give it before the command: ferv --preset demo config show",
        "warning: --set after the command is deprecated and goes in the next release; "
        f"give it before the command: ferv --set storage.root={tmp_path} config show",
    ]
    # A bad value there is a config error all the same (exit 2).
    bad = runner.invoke(app, ["catalog", "ls", "--set", "segment.max_len=.inf"])
    assert "deprecated" in bad.stderr and isinstance(bad.exception, ValueError)
    assert "segment.max_len" in str(bad.exception) and exit_code(bad.exception) == 2


def test_with_config_gives_the_command_its_request_and_leaves_it_its_own_parameters():
    from flows.cli.options import ConfigRequest, Overrides, Preset, RootOptions, with_config

    cli = typer.Typer()

    @cli.callback()
    def root(ctx: typer.Context, preset: Preset = None, set_: Overrides = None) -> None:
        ctx.obj = RootOptions(preset=preset, overrides=list(set_ or []))

    @cli.command()
    @with_config(preset="demo")
    def show(config: ConfigRequest, n: Annotated[int, typer.Option(help="A number.")] = 1) -> None:
        """Show the request."""
        typer.echo(f"{config.preset} {list(config.overrides)} {n}")

    assert runner.invoke(cli, ["show"]).stdout == "demo [] 1\n"  # the command's default preset
    assert runner.invoke(cli, ["--preset", "default", "--set", "a=1", "show", "--n", "2"]).stdout == (
        "default ['a=1'] 2\n"
    )
    mixed = runner.invoke(cli, ["--preset", "x", "--set", "a=1", "show", "--preset", "y", "--set", "b=2"])
    assert mixed.stdout == "y ['a=1', 'b=2'] 1\n" and mixed.stderr.count("deprecated") == 2
    assert ConfigRequest(overrides=("a=1",)).with_overrides("b=2").flow_parameters() == {
        "preset": "default", "config_file": None, "overrides": ["a=1", "b=2"],
    }  # fmt: skip
    with pytest.raises(TypeError, match="'cfg' or 'config'"):
        with_config(lambda n=1: n)


@pytest.mark.parametrize(
    "command, shows",
    [
        (["catalog", "sql"], ["statement", "One SQL statement", "--csv"]),
        (["build-candidates"], ["--scene", "--source", "--target", "--seed", "--no-crawl"]),
        (["annotate", "land"], ["--batch", "--method", "--run-id", "--prefect"]),
        (["assets", "fetch"], ["names", "--verify", "--quiet", "--registry"]),
    ],
)
def test_a_commands_help_shows_its_own_options_and_where_the_config_goes(command, shows):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    for word in shows:
        assert word in result.output, (command, word)
    text = " ".join(result.output.split())
    assert (
        "Config options go before the command: ferv [--config FILE] [--preset NAME] [--set KEY=VALUE]" in text
    )
    assert "-c " not in result.output  # the spelling after the command is hidden
    overall = runner.invoke(app, ["--help"]).output
    assert all(option in overall for option in ("--config", "--preset", "--set"))


@pytest.mark.slow
def test_a_bad_root_override_is_a_config_error_with_exit_2(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "flows.cli", "--set", "segment.nope=1", "config", "show"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 2 and "segment.nope" in out.stderr and "Traceback" not in out.stderr


def test_exit_codes_tell_a_bad_request_from_a_failed_run():
    assert exit_code(ValueError("service.recrawl: bad cron")) == 2
    assert exit_code(FileNotFoundError("batch.parquet")) == 2
    assert exit_code(ConnectionError("weights URL: download failed")) == 1  # was 2: not the user's request
    assert exit_code(RuntimeError("a bug")) is None
