"""Render ``docs/cli.md`` from every command's ``--help`` (a test keeps the file current).

uv run python -m diffutron_cli.cli_docs > docs/cli.md
"""

from __future__ import annotations

from typing import cast

import click

APPS = ("diffutron-train", "diffutron-sample", "diffutron-eval", "diffutron")
WIDTH = 100


def _app(name: str) -> click.Command:
    from diffutron_cli.evaluate import evaluate
    from diffutron_cli.main import diffutron
    from diffutron_cli.sample import sample
    from diffutron_cli.train import train

    return {
        "diffutron": diffutron,
        "diffutron-train": train,
        "diffutron-sample": sample,
        "diffutron-eval": evaluate,
    }[name]


def _context(command: click.Command, name: str, parent: click.Context | None) -> click.Context:
    """A context as click builds it for ``--help`` (the command's settings, e.g. ``-h``), at a
    fixed width so the text does not depend on the terminal."""
    settings = {**command.context_settings, "terminal_width": WIDTH, "max_content_width": WIDTH}
    return click.Context(command, info_name=name, parent=parent, **settings)


def _walk(command: click.Command, path: list[str], parent: click.Context | None):
    ctx = _context(command, path[-1], parent)
    yield " ".join(path), command.get_help(ctx)
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from _walk(sub, [*path, name], ctx)


def render() -> str:
    parts = [
        "# Command reference",
        "",
        "Generated from every command's `--help` by `python -m diffutron_cli.cli_docs`; a test "
        "fails when it is out of date. `diffutron train|sample|eval` are the same groups as the "
        "stand-alone apps, so they are listed once.",
    ]
    for app in APPS:
        command = _app(app)
        if app == "diffutron":  # its train/sample/eval are the apps above
            ctx = _context(command, app, None)
            entries = [(app, command.get_help(ctx))]
            group = cast(click.Group, command)  # the app of apps is a group
            for name in ("info", "demo"):
                sub = cast(click.Command, group.get_command(ctx, name))  # both are its commands
                entries += list(_walk(sub, [app, name], ctx))
        else:
            entries = list(_walk(command, [app], None))
        for title, text in entries:
            parts += ["", f"## `{title}`", "", "```text", text.rstrip(), "```"]
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    click.echo(render(), nl=False)
