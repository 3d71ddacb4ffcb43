"""``diffutron-train cpt``: LoRA continual pre-training."""

from __future__ import annotations

import logging

import click

from diffutron_cli.options import friendly_errors


@click.command()
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
@click.option("--data", type=click.Path(file_okay=False), help="A corpus made by 'prepare cpt'.")
@click.option("--source", "sources", multiple=True, help="Corpus sources, as for 'prepare cpt'.")
@click.option("--output-dir", help="Run folder: data, checkpoints, log, model [runs/cpt-<preset>].")
@click.option(
    "--max-length", type=click.IntRange(min=2), help="Token limit of the corpus [preset's]."
)
@click.option("--objective", type=click.Choice(["mlm", "mdlm"]), help="[mlm]")
@click.option("--mlm-probability", type=float, help="Masking rate of the mlm objective [0.15].")
@click.option(
    "--lora/--no-lora",
    "use_lora",
    default=None,
    help="LoRA adapters (paper preset) or train every weight (tiny preset) [preset's].",
)
@click.option("--lora-r", type=click.IntRange(min=1), help="LoRA rank [256].")
@click.option("--lora-alpha", type=float, help="LoRA alpha [256].")
@click.option("--lora-dropout", type=float, help="LoRA dropout [0.05].")
@click.option("--batch-size", type=click.IntRange(min=1), help="Per-device batch [64; tiny 16].")
@click.option("--grad-accum", type=click.IntRange(min=1), help="Gradient accumulation [2; tiny 1].")
@click.option("--epochs", type=float, help="[4; tiny 3]")
@click.option("--max-steps", type=click.IntRange(min=1), help="Stop after this many steps.")
@click.option("--lr", "learning_rate", type=float, help="Peak learning rate (cosine schedule).")
@click.option("--optimizer", type=click.Choice(["adamw", "paged_adamw_8bit"]))
@click.option("--save-every", type=click.IntRange(min=1), help="Checkpoint every N steps.")
@click.option("--keep-last", type=click.IntRange(min=1), help="Checkpoints kept [2].")
@click.option("--seed", type=int, help="[0]")
@click.option("--num-proc", type=click.IntRange(min=1), default=1, show_default=True)
@click.option(
    "--pack/--no-pack", default=True, show_default=True, help="Pack documents into full rows."
)
@click.option("--resume", is_flag=True, help="Continue from the newest checkpoint in --output-dir.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the resolved run and trainable parameters; train nothing.",
)
@friendly_errors
def cpt(
    use_lora,
    preset,
    model,
    tokenizer,
    data,
    sources,
    output_dir,
    max_length,
    pack,
    num_proc,
    resume,
    dry_run,
    **options,
):
    """Continual pre-training: LoRA adapters on every attention and MLP linear layer, masked-LM
    loss, resumable atomic checkpoints, then a merged Hugging Face model in OUTPUT_DIR/model."""
    from diffutron_train.cpt import cpt_run, run_cpt
    from diffutron_train.cpt import dry_run as describe

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    lora_keys = {"lora_r": "r", "lora_alpha": "lora_alpha", "lora_dropout": "lora_dropout"}
    lora = {lora_keys[k]: v for k, v in options.items() if k in lora_keys and v is not None}
    loop = {k: v for k, v in options.items() if k not in lora_keys and v is not None}
    fields = {
        "model": model,
        "tokenizer": tokenizer,
        "data": data,
        "sources": list(sources),
        "max_length": max_length,
        "pack": pack,
        "num_proc": num_proc,
    }
    if output_dir:
        fields["output_dir"] = output_dir
    run = cpt_run(preset, loop=loop, lora=lora, use_lora=use_lora, **fields)
    if dry_run:
        for line in describe(run):
            click.echo(line)
        return
    exported = run_cpt(run, resume=resume)
    click.echo(f"model saved to {exported}")
