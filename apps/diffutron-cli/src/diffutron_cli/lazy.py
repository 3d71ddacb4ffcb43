"""A click group whose subcommands are imported only when they are used.

``--help`` and ``--version`` must stay fast and must not import torch, so subcommands live in their
own modules, named here as ``"package.module:attribute"``, and those modules import heavy libraries
inside the command functions only.
"""

from __future__ import annotations

import importlib
import os

import click


class FlagEnvOption(click.Option):
    """An option whose environment variable may also be spelt as its flag: ``--lr`` reads
    ``PREFIX_LR`` as well as ``PREFIX_LEARNING_RATE`` (the parameter's name, click's rule)."""

    def envvar_names(self, ctx: click.Context) -> list[str]:
        if not self.allow_from_autoenv or ctx.auto_envvar_prefix is None or not self.name:
            return []
        names = [self.name.upper()]
        names += [o[2:].replace("-", "_").upper() for o in self.opts if o.startswith("--")]
        return [f"{ctx.auto_envvar_prefix}_{n}" for n in dict.fromkeys(names)]

    def resolve_envvar_value(self, ctx: click.Context) -> str | None:
        value = super().resolve_envvar_value(ctx)
        if value is not None:
            return value
        for name in self.envvar_names(ctx)[1:]:
            if os.environ.get(name):
                return os.environ[name]
        return None


def flag_envvars(command: click.Command) -> click.Command:
    """Give every plain option of ``command`` (and of a group's registered commands) the
    :class:`FlagEnvOption` behaviour."""
    for param in command.params:
        if type(param) is click.Option:
            param.__class__ = FlagEnvOption
    for sub in getattr(command, "commands", {}).values():
        flag_envvars(sub)
    return command


class LazyGroup(click.Group):
    """``click.Group`` with ``lazy_subcommands={"name": "module:attr"}`` loaded on first use."""

    def __init__(self, *args, lazy_subcommands: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy_subcommands = dict(lazy_subcommands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_subcommands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = self.lazy_subcommands.get(cmd_name)
        if target is None:
            command = super().get_command(ctx, cmd_name)
            return flag_envvars(command) if command is not None else None
        module_name, _, attribute = target.partition(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        return flag_envvars(command)
