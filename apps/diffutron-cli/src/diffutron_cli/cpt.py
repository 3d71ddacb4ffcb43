"""``diffutron-train cpt``: LoRA continual pre-training."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from diffutron_cli.options import FiniteFloat, friendly_errors
from diffutron_cli.train_options import finish, loop_options, run_config_option, split_loop


@click.command()
@run_config_option
@click.option(
    "--preset",
    type=click.Choice(["tiny", "paper"]),
    default="tiny",
    show_default=True,
    help="tiny: a small ModernBERT from scratch on the embedded corpus, offline; "
    "paper: mmBERT-base on the paper's corpus (GPU, Hub).",
)
@click.option("--model", help="Backbone: model directory or Hub id [preset's].")
@click.option("--tokenizer", help="Tokenizer [the model's, or the preset's].")
@click.option(
    "--data",
    help="A corpus made by 'prepare cpt', or a .txt/.jsonl/.parquet file or hub:ID to prepare.",
)
@click.option("--source", "sources", multiple=True, help="Corpus sources, as for 'prepare cpt'.")
@click.option("--output-dir", help="Run folder: data, checkpoints, log, model [runs/cpt-<preset>].")
@click.option(
    "--max-length", type=click.IntRange(min=2), help="Token limit of the corpus [512; tiny 256]."
)
@click.option("--objective", type=click.Choice(["mlm", "mdlm"]), help="[mlm]")
@click.option(
    "--mlm-probability",
    type=FiniteFloat(0, 1, min_open=True, max_open=True),
    help="Masking rate of the mlm objective [0.15].",
)
@click.option(
    "--lora/--no-lora",
    "use_lora",
    default=None,
    help="LoRA adapters (paper preset) or train every weight (tiny preset) [preset's].",
)
@click.option("--lora-r", type=click.IntRange(min=1), help="LoRA rank [256].")
@click.option("--lora-alpha", type=click.IntRange(min=1), help="LoRA alpha [256].")
@click.option("--lora-dropout", type=FiniteFloat(0, 1, max_open=True), help="[0.05]")
@loop_options
@click.option("--num-proc", type=click.IntRange(min=1), default=1, show_default=True)
@click.option(
    "--pack/--no-pack", default=True, show_default=True, help="Pack documents into full rows."
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the resolved run and trainable parameters; train nothing.",
)
@friendly_errors
def cpt(use_lora, preset, output_dir, resume, dry_run, push_to_hub, private, **options):
    """Continual pre-training: LoRA adapters on every attention and MLP linear layer, masked-LM
    loss, resumable atomic checkpoints, TensorBoard logs and loss.png, then a merged Hugging Face
    model in OUTPUT_DIR/model. Runs data-parallel under torchrun or accelerate launch."""
    from diffutron_train import cpt_run, run_cpt
    from diffutron_train import describe_cpt_run as describe

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    loop, fields = split_loop(options)
    lora_keys = {"lora_r": "r", "lora_alpha": "lora_alpha", "lora_dropout": "lora_dropout"}
    lora = {lora_keys[k]: fields.pop(k) for k in lora_keys if fields[k] is not None}
    for key in lora_keys:
        fields.pop(key, None)
    fields["sources"] = list(fields["sources"])
    if output_dir:
        fields["output_dir"] = output_dir
    run = cpt_run(preset, loop=loop, lora=lora, use_lora=use_lora, **fields)
    if dry_run:
        for line in describe(run):
            click.echo(line)
        return
    finish(Path(run_cpt(run, resume=resume)), push_to_hub, private)
