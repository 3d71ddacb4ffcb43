"""What every Diffutron app shares: help and version flags, environment defaults, ``--config``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click

from diffutron_cli import __version__
from diffutron_cli.failures import friendly_errors as friendly_errors  # re-exported
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


CONFIG_FILES = "diffutron.config_files"
"""``ctx.meta`` key: the config files read for this invocation (inputs an output must not be)."""


def config_files() -> list[str]:
    """The ``--config`` files of the running command (and its groups)."""
    ctx = click.get_current_context(silent=True)
    return list(ctx.meta.get(CONFIG_FILES, [])) if ctx is not None else []


def load_config(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """Eager callback of ``--config``: merge a YAML mapping into ``ctx.default_map``.

    click then resolves every option as command line > environment variable > this file > the
    option's default. On a group the file maps subcommand names to their options.
    """
    if value is None:
        return None
    import yaml  # only when a config file is given

    from diffutron_common import DiffutronError, read_text, reason

    path = Path(value)
    try:
        data = yaml.safe_load(read_text(path, what="config file"))
    except DiffutronError as exc:  # missing, a folder, not UTF-8: one line naming it
        raise click.BadParameter(str(exc)) from None
    except yaml.YAMLError as exc:
        raise click.BadParameter(f"config file {path} is not valid YAML ({reason(exc)})") from None
    except RecursionError:
        raise click.BadParameter(f"config file {path} is nested too deeply") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise click.BadParameter(
            f"config file {path} must hold a mapping of option names to values, "
            f"not a {type(data).__name__}"
        )
    ctx.meta.setdefault(CONFIG_FILES, []).append(str(path))
    values = _normalise_keys(data)
    if isinstance(ctx.command, click.Group):
        values = _group_values(ctx.command, ctx, values, path)
    else:
        values = _option_names_to_params(ctx.command, values, path)
    ctx.default_map = {**(ctx.default_map or {}), **values}
    return value


def _group_values(group: click.Group, ctx: click.Context, values: dict[str, Any], path: Path):
    """A group's file maps subcommand names to their options: every key must name a subcommand
    and every option one of its options, at every level (a misspelt key is an error, never
    ignored)."""
    out: dict[str, Any] = {}
    commands = group.list_commands(ctx)
    for key, value in values.items():
        command = group.get_command(ctx, str(key)) if key in commands else None
        if command is None:
            raise click.BadParameter(
                f"config file {path}: {key!r} is not a command of '{group.name}' (commands: "
                f"{', '.join(commands)}); nest options under their command"
            )
        value = {} if value is None else value
        if not isinstance(value, dict):
            raise click.BadParameter(
                f"config file {path}: {key!r} must map option names to values, not "
                f"{type(value).__name__}"
            )
        if isinstance(command, click.Group):
            sub = click.Context(command, info_name=str(key), parent=ctx)
            out[key] = _group_values(command, sub, value, path)
        else:
            out[key] = _option_names_to_params(command, value, path)
    return out


def _option_names_to_params(command: click.Command, values: dict[str, Any], path: Path):
    """Let a command's file use its flags' names (``lr``, ``lora``) for parameters named
    otherwise (``learning_rate``, ``use_lora``); an unknown key is an error, not ignored."""
    names: dict[str, str] = {}
    for param in command.params:
        names[param.name] = param.name
        for flag in param.opts:
            names[flag.lstrip("-").replace("-", "_")] = param.name
    nested = sorted(key for key, value in values.items() if isinstance(value, dict))
    if nested:
        raise click.BadParameter(
            f"config file {path}: {', '.join(nested)} of '{command.name}' must be values, not "
            "mappings"
        )
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise click.BadParameter(
            f"config file {path}: unknown option(s) {', '.join(unknown)} for '{command.name}'"
        )
    params = {param.name: param for param in command.params}
    for key, value in values.items():
        problem = _value_problem(params[names[key]], value)
        if problem:
            raise click.BadParameter(f"config file {path}: {key} of '{command.name}' {problem}")
    return {names[key]: value for key, value in values.items()}


def _value_problem(param: click.Parameter, value: Any) -> str | None:
    """What is wrong with a config file's value for ``param``, or None. YAML gives typed values,
    and click would turn ``8.7`` into 8 steps and ``true`` into 1 without a word."""
    if value is None:
        return None
    several = getattr(param, "multiple", False) or param.nargs != 1
    if isinstance(value, list) and not several:
        return "must be a single value, not a list"
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, (list, dict)):
            return f"must be a plain value, not {type(item).__name__}"
        kind = param.type
        if isinstance(kind, click.types.BoolParamType) or getattr(param, "is_flag", False):
            if not isinstance(item, bool):
                return f"must be true or false, got {item!r}"
        elif isinstance(kind, click.types.IntParamType):
            if isinstance(item, (bool, float)):
                return f"must be a whole number, got {item!r}"
        elif isinstance(kind, click.types.FloatParamType):
            if isinstance(item, bool):
                return f"must be a number, got {item!r}"
        elif isinstance(item, bool):
            return f"must be text, got {item!r}"
    return None


config_option = click.option(
    "--config",
    type=click.Path(dir_okay=False),
    is_eager=True,
    expose_value=False,
    callback=load_config,
    help="YAML file of option defaults (the command line and DIFFUTRON_* variables win).",
)


class FiniteFloat(click.FloatRange):
    """A float option that must be a finite number (``nan`` and ``inf`` are refused), within the
    optional bounds of :class:`click.FloatRange`."""

    def convert(self, value, param, ctx):
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            self.fail(f"{value!r} is not a number.", param, ctx)
        try:
            finite = math.isfinite(float(value))
        except OverflowError:  # an integer too large for a float
            finite = False
        except (TypeError, ValueError):
            finite = True  # not a number at all: click's own message says so
        if not finite:
            shown = repr(value) if len(str(value)) <= 20 else f"{str(value)[:12]}…"
            self.fail(f"{shown} is not a finite number.", param, ctx)
        return super().convert(value, param, ctx)

    def _describe_range(self) -> str:
        if self.min is None and self.max is None:
            return "finite"
        return super()._describe_range()


SEED = click.IntRange(0, 2**31 - 1)
"""Seeds: whole numbers that every generator and every seed formula here can take."""


def trust_remote_code_option(function):
    """``--trust-remote-code``: off by default; the only way code shipped with a model runs."""
    return click.option(
        "--trust-remote-code",
        is_flag=True,
        help="Run Python code that a Hub model ships (custom classes). Off: only safetensors "
        "weights and the classes of transformers load. Use only with models you trust.",
    )(function)


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


def with_options(function, options):
    """``function`` decorated with each click option of ``options``, in the order listed."""
    for option in reversed(options):
        function = option(function)
    return function
