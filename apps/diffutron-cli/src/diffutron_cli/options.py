"""What every Diffutron app shares: help and version flags, environment defaults, ``--config``."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import click

from diffutron_cli import __version__
from diffutron_cli.lazy import LazyGroup


def _normalise_keys(mapping: dict[str, Any]) -> dict[str, Any]:
    """YAML may spell options as on the command line (``max-length``); click wants ``max_length``.

    Nested mappings are the defaults of a subcommand and keep their key (the command's name).
    """
    return {
        key if isinstance(value, dict) else str(key).replace("-", "_"): (
            _normalise_keys(value) if isinstance(value, dict) else value
        )
        for key, value in mapping.items()
    }


def load_config(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """Eager callback of ``--config``: merge a YAML mapping into ``ctx.default_map``.

    click then resolves every option as command line > environment variable > this file > the
    option's default. On a group the file maps subcommand names to their options.
    """
    if value is None:
        return None
    import yaml  # only when a config file is given

    path = Path(value)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise click.BadParameter(f"config file {path} does not exist") from None
    except OSError as exc:
        raise click.BadParameter(f"cannot read config file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        reason = str(exc).splitlines()[0]
        raise click.BadParameter(f"config file {path} is not valid YAML ({reason})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise click.BadParameter(
            f"config file {path} must hold a mapping of option names to values, "
            f"not a {type(data).__name__}"
        )
    values = _normalise_keys(data)
    if not isinstance(ctx.command, click.Group):
        values = _option_names_to_params(ctx.command, values, path)
    ctx.default_map = {**(ctx.default_map or {}), **values}
    return value


def _option_names_to_params(command: click.Command, values: dict[str, Any], path: Path):
    """Let a command's file use its flags' names (``lr``, ``lora``) for parameters named
    otherwise (``learning_rate``, ``use_lora``); an unknown key is an error, not ignored."""
    names: dict[str, str] = {}
    for param in command.params:
        names[param.name] = param.name
        for flag in param.opts:
            names[flag.lstrip("-").replace("-", "_")] = param.name
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise click.BadParameter(
            f"config file {path}: unknown option(s) {', '.join(unknown)} for '{command.name}'"
        )
    return {names[key]: value for key, value in values.items()}


config_option = click.option(
    "--config",
    type=click.Path(dir_okay=False),
    is_eager=True,
    expose_value=False,
    callback=load_config,
    help="YAML file of option defaults (the command line and DIFFUTRON_* variables win).",
)


def app_group(
    name: str, help_text: str, *, envvar_prefix: str, lazy_subcommands: dict[str, str]
) -> click.Group:
    """A root group of one Diffutron app, with ``-h/--help``, ``-V/--version`` and ``--config``.

    Every option also reads ``{envvar_prefix}_{COMMAND}_{OPTION}`` from the environment.
    """

    @click.group(
        name=name,
        cls=LazyGroup,
        lazy_subcommands=lazy_subcommands,
        help=help_text,
        context_settings={
            "help_option_names": ["-h", "--help"],
            "auto_envvar_prefix": envvar_prefix,
        },
    )
    @click.version_option(__version__, "-V", "--version", prog_name=name)
    @config_option
    def group() -> None:
        pass

    return group


USER_ERRORS = {
    "diffutron_data.errors:DataError",
    "diffutron_eval.errors:EvalError",
    "diffutron_sample.config:SampleError",
    "diffutron_train.loop:TrainError",
}
"""Library exceptions that describe a user's mistake in one line; commands print them as is.
Named as strings so that checking them imports nothing."""


def _is_user_error(exc: BaseException) -> bool:
    return any(f"{cls.__module__}:{cls.__qualname__}" in USER_ERRORS for cls in type(exc).__mro__)


def friendly_errors(command):
    """Turn the libraries' user errors into one-line ``click.ClickException`` messages."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except Exception as exc:
            if _is_user_error(exc):
                raise click.ClickException(str(exc)) from None
            raise

    return wrapper
