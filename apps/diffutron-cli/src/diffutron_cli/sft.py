"""``diffutron-train sft``: MDLM instruction tuning, stage 1 or 2."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click

from diffutron_cli.options import friendly_errors
from diffutron_cli.train_options import finish, loop_options, run_config_option, split_loop


@click.command()
@run_config_option
@click.option("--preset", type=click.Choice(["tiny", "paper"]), default="tiny", show_default=True)
@click.option(
    "--stage",
    type=click.IntRange(1, 2),
    default=1,
    show_default=True,
    help="paper: 1 = LlamaTurk-Instruction-Set (20 epochs x 16), 2 = InstrucTurca (8 x 96).",
)
@click.option(
    "--model", help="Model directory to tune (stage 1: the CPT output; stage 2: stage 1's)."
)
@click.option(
    "--data",
    help="Rows made by 'prepare sft', or a .jsonl/.parquet file or hub:ID to prepare.",
)
@click.option(
    "--source", "sources", multiple=True, help="Instruction sources, as for 'prepare sft'."
)
@click.option(
    "--schema", type=click.Choice(["auto", "alpaca", "instructurca", "messages"]), default="auto"
)
@click.option("--synthetic", type=click.IntRange(min=0), help="Synthetic rows per task [tiny 300].")
@click.option(
    "--synthetic-task",
    "synthetic_tasks",
    multiple=True,
    help="A synthetic task to add (repeat) [tiny: is_question, first_word, repeat].",
)
@click.option("--output-dir", help="Run folder [runs/sft-<preset>-stage<N>].")
@click.option("--max-length", type=click.IntRange(min=2), help="[256; tiny 64]")
@click.option(
    "--pad-tail/--no-pad-tail",
    default=True,
    show_default=True,
    help="Train the pad tail after each answer (dLLM's recipe).",
)
@click.option("--normalization", type=click.Choice(["sequence", "token"]), help="[sequence]")
@loop_options
@click.option("--num-proc", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--dry-run", is_flag=True, help="Print the resolved run; train nothing.")
@friendly_errors
def sft(preset, stage, output_dir, resume, dry_run, push_to_hub, private, **options):
    """Instruction tuning with the MDLM loss on the response only; writes OUTPUT_DIR/model with the
    chat template and sampler defaults, ready for 'diffutron-sample chat --model'. Runs
    data-parallel under torchrun or accelerate launch."""
    from diffutron_train import run_sft, sft_run

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    loop, fields = split_loop(options)
    fields["sources"] = list(fields["sources"])
    fields["synthetic_tasks"] = list(fields["synthetic_tasks"]) or None
    if output_dir:
        fields["output_dir"] = output_dir
    run = sft_run(preset, stage, loop=loop, **fields)
    if dry_run:
        click.echo(json.dumps(run.to_dict(), indent=2))
        return
    finish(Path(run_sft(run, resume=resume)), push_to_hub, private)
