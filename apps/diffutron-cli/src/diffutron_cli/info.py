"""``diffutron info``: what is installed and which devices torch can use."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import click

PACKAGES = (
    "diffutron-common",
    "diffutron-core",
    "diffutron-data",
    "diffutron-train",
    "diffutron-sample",
    "diffutron-eval",
    "diffutron-serve",
    "diffutron-cli",
    "torch",
    "transformers",
    "datasets",
    "accelerate",
    "peft",
    "bitsandbytes",
    "lm-eval",
)


@click.command()
def info() -> None:
    """Print the versions of Diffutron's packages and backends, and the devices torch sees."""
    for name in PACKAGES:
        try:
            found = version(name)
        except PackageNotFoundError:
            found = "not installed"
        click.echo(f"{name:<18} {found}")
    import torch  # imported here so that --help stays light

    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [
            f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())
        ]
    if torch.backends.mps.is_available():
        devices.append("mps")
    click.echo(f"{'devices':<18} {', '.join(devices)}")
