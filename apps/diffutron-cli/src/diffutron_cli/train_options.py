"""Options every training command shares: the optimisation loop, resuming, the Hub upload."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import click

from diffutron_cli.options import SEED, FiniteFloat, load_config, trust_remote_code_option

LOOP_KEYS = (
    "objective",
    "mlm_probability",
    "normalization",
    "batch_size",
    "grad_accum",
    "epochs",
    "max_steps",
    "learning_rate",
    "warmup_ratio",
    "weight_decay",
    "max_grad_norm",
    "optimizer",
    "mixed_precision",
    "save_every",
    "keep_last",
    "log_every",
    "seed",
)
"""Option names that are fields of ``diffutron_train.LoopSettings``."""


def bundled_configs() -> list[str]:
    """Names of the YAML run configs shipped with the app (``--config NAME``)."""
    folder = files("diffutron_cli") / "configs"
    return sorted(
        p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")
    )


def _load_run_config(ctx: click.Context, param: click.Parameter, value: str | None):
    """``--config``: a YAML file, or the name of a bundled one (``paper-cpt``)."""
    if value is not None and not Path(value).exists() and "/" not in value:
        bundled = files("diffutron_cli") / "configs" / f"{value.removesuffix('.yaml')}.yaml"
        if not bundled.is_file():
            raise click.BadParameter(
                f"no config file or bundled config {value!r}; bundled: "
                + ", ".join(bundled_configs())
            )
        value = str(bundled)
    return load_config(ctx, param, value)


def run_config_option(command):
    return click.option(
        "--config",
        is_eager=True,
        expose_value=False,
        callback=_load_run_config,
        help="YAML file of option defaults, or a bundled one by name ("
        + ", ".join(bundled_configs())
        + "); any option given on the command line wins; the resolved run is saved in "
        "OUTPUT_DIR/run.json.",
    )(command)


def loop_options(command):
    """The optimisation options (defaults: the preset's, shown in brackets)."""
    decorators = [
        click.option("--batch-size", type=click.IntRange(min=1), help="Rows per device and step."),
        click.option("--grad-accum", type=click.IntRange(min=1), help="Gradient accumulation."),
        click.option("--epochs", type=FiniteFloat(min=0, min_open=True)),
        click.option("--max-steps", type=click.IntRange(min=1), help="Stop after N steps."),
        click.option(
            "--lr", "learning_rate", type=FiniteFloat(min=0, min_open=True), help="Peak LR."
        ),
        click.option("--warmup-ratio", type=FiniteFloat(0, 1), help="[0.05]"),
        click.option("--weight-decay", type=FiniteFloat(min=0), help="[0.01]"),
        click.option(
            "--max-grad-norm", type=FiniteFloat(min=0, min_open=True), help="Clip at [1.0]."
        ),
        click.option("--optimizer", type=click.Choice(["adamw", "paged_adamw_8bit"])),
        click.option(
            "--mixed-precision",
            type=click.Choice(["auto", "no", "fp16", "bf16"]),
            help="auto: bf16 (else fp16) on a GPU, fp32 on the CPU [auto].",
        ),
        click.option("--save-every", type=click.IntRange(min=1), help="Checkpoint every N steps."),
        click.option("--keep-last", type=click.IntRange(min=1), help="Checkpoints kept [2]."),
        click.option("--log-every", type=click.IntRange(min=1), help="Log every N steps."),
        click.option("--seed", type=SEED, help="[0]"),
        click.option(
            "--resume",
            is_flag=True,
            help="Continue the run in --output-dir from its newest intact checkpoint (also to a "
            "larger --max-steps or --epochs).",
        ),
        click.option(
            "--push-to-hub",
            metavar="REPO",
            help="Upload the exported model to this Hub repository (needs network and a token).",
        ),
        click.option("--private", is_flag=True, help="With --push-to-hub: a private repository."),
        trust_remote_code_option,
    ]
    for decorate in reversed(decorators):
        command = decorate(command)
    return command


def split_loop(options: dict) -> tuple[dict, dict]:
    """(loop settings given, everything else) from a command's keyword arguments."""
    loop = {k: v for k, v in options.items() if k in LOOP_KEYS and v is not None}
    rest = {k: v for k, v in options.items() if k not in LOOP_KEYS}
    return loop, rest


def finish(exported: Path, push_to_hub: str | None, private: bool) -> None:
    """Report the exported model and upload it when asked (rank 0 of a distributed run only)."""
    from diffutron_train import push_to_hub as upload
    from diffutron_train.distributed import is_main_process

    if not is_main_process():
        return
    click.echo(f"model saved to {exported}")
    if push_to_hub:
        click.echo(f"uploaded to {upload(exported, push_to_hub, private=private)}")
