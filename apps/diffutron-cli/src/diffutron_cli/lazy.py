"""A click group whose subcommands are imported only when they are used.

``--help`` and ``--version`` must stay fast and must not import torch, so subcommands live in their
own modules, named here as ``"package.module:attribute"``, and those modules import heavy libraries
inside the command functions only.
"""

from __future__ import annotations

import importlib

import click


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
            return super().get_command(ctx, cmd_name)
        module_name, _, attribute = target.partition(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        return command
