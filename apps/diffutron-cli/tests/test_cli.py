import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from diffutron_cli import __version__
from diffutron_cli.evaluate import evaluate
from diffutron_cli.lazy import LazyGroup
from diffutron_cli.main import diffutron
from diffutron_cli.options import app_group
from diffutron_cli.sample import sample
from diffutron_cli.train import train

APPS = {
    "diffutron": diffutron,
    "diffutron-train": train,
    "diffutron-sample": sample,
    "diffutron-eval": evaluate,
}


@pytest.mark.parametrize("name", list(APPS))
def test_help_and_version(name):
    runner = CliRunner()
    help_result = runner.invoke(APPS[name], ["-h"], prog_name=name)
    assert help_result.exit_code == 0 and f"Usage: {name}" in help_result.output
    version_result = runner.invoke(APPS[name], ["--version"], prog_name=name)
    assert version_result.exit_code == 0
    assert version_result.output.strip() == f"{name}, version {__version__}"


def test_umbrella_lists_and_reaches_the_app_groups():
    result = CliRunner().invoke(diffutron, ["--help"])
    for sub in ("train", "sample", "eval", "info"):
        assert f"  {sub} " in result.output
    nested = CliRunner().invoke(diffutron, ["train", "--help"], prog_name="diffutron")
    assert nested.exit_code == 0 and "Usage: diffutron train" in nested.output


def test_help_of_every_command_does_not_import_torch():
    code = (
        "import sys\n"
        "from diffutron_cli.main import diffutron\n"
        "for args in (['--help'], ['train', '--help'], ['sample', '--help'], ['eval', '--help'],\n"
        "             ['info', '--help'], ['--version']):\n"
        "    try:\n"
        "        diffutron(args, prog_name='diffutron')\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code == 0, (args, exc.code)\n"
        "heavy = [m for m in ('torch', 'transformers', 'datasets', 'peft', 'lm_eval')\n"
        "         if m in sys.modules]\n"
        "print('heavy:', heavy)\n"
        "sys.exit(1 if heavy else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_info_reports_versions_and_devices():
    result = CliRunner().invoke(diffutron, ["info"])
    assert result.exit_code == 0, result.output
    assert f"diffutron-core     {__version__}" in result.output
    assert "devices            cpu" in result.output


def test_unknown_command_is_a_one_line_usage_error():
    result = CliRunner().invoke(diffutron, ["tarin"])
    assert result.exit_code == 2 and "No such command 'tarin'" in result.output


def test_lazy_group_imports_only_the_command_asked_for():
    group = LazyGroup(
        name="g", lazy_subcommands={"ok": "diffutron_cli.info:info", "bad": "json:dumps"}
    )
    ctx = click.Context(group)
    assert group.list_commands(ctx) == ["bad", "ok"]
    assert group.get_command(ctx, "ok").name == "info"
    assert group.get_command(ctx, "missing") is None
    with pytest.raises(TypeError, match="not a click command"):
        group.get_command(ctx, "bad")


@pytest.fixture
def echo_app():
    """An app group with one command, to check option precedence end to end."""
    group = app_group("demo-app", "Test app.", envvar_prefix="DEMO", lazy_subcommands={})

    @group.command()
    @click.option("--max-length", type=int, default=1)
    @click.option("--name", default="default")
    def run(max_length, name):
        click.echo(f"{max_length} {name}")

    return group


def test_config_file_env_and_command_line_precedence(tmp_path, echo_app):
    config = tmp_path / "c.yaml"
    config.write_text("run:\n  max-length: 7\n  name: from-file\n", encoding="utf-8")
    runner = CliRunner()
    assert runner.invoke(echo_app, ["run"]).output == "1 default\n"
    assert runner.invoke(echo_app, ["--config", str(config), "run"]).output == "7 from-file\n"
    env = {"DEMO_RUN_NAME": "from-env"}
    assert (
        runner.invoke(echo_app, ["--config", str(config), "run"], env=env).output == "7 from-env\n"
    )
    result = runner.invoke(echo_app, ["--config", str(config), "run", "--name", "cli"], env=env)
    assert result.output == "7 cli\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        ("run: [unclosed\n", "is not valid YAML"),
        ("- a\n- b\n", "must hold a mapping"),
    ],
)
def test_bad_config_is_a_one_line_error(tmp_path, echo_app, content, message):
    config = tmp_path / "c.yaml"
    if content is not None:
        config.write_text(content, encoding="utf-8")
    result = CliRunner().invoke(echo_app, ["--config", str(config), "run"])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
