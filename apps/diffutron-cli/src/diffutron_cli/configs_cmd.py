"""``diffutron-train configs``: the run and accelerate configs shipped with the app."""

from __future__ import annotations

from importlib.resources import as_file, files

import click


@click.command()
@click.argument("name", required=False)
def configs(name):
    """List the bundled configs with their paths, or print config NAME (e.g. paper-cpt,
    accelerate/2gpu). Run configs go to 'cpt/sft --config NAME'; accelerate configs to
    'accelerate launch --config_file PATH -m diffutron_cli.train ...'."""
    root = files("diffutron_cli") / "configs"
    found = {
        f"{folder}{p.name.removesuffix('.yaml')}": p
        for folder, base in (("", root), ("accelerate/", root / "accelerate"))
        for p in base.iterdir()
        if p.name.endswith(".yaml")
    }
    if name is None:
        for key in sorted(found):
            with as_file(found[key]) as path:
                click.echo(f"{key:<20} {path}")
        return
    key = name.removesuffix(".yaml")
    if key not in found:
        raise click.BadParameter(f"no bundled config {name!r}; known: {', '.join(sorted(found))}")
    click.echo(found[key].read_text(encoding="utf-8"), nl=False)
