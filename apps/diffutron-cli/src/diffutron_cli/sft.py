"""``diffutron-train sft``: MDLM instruction tuning, stage 1 or 2."""

from __future__ import annotations

import logging

import click

from diffutron_cli.options import friendly_errors


@click.command()
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
@click.option("--data", type=click.Path(file_okay=False), help="Rows made by 'prepare sft'.")
@click.option(
    "--source", "sources", multiple=True, help="Instruction sources, as for 'prepare sft'."
)
@click.option(
    "--schema", type=click.Choice(["auto", "alpaca", "instructurca", "messages"]), default="auto"
)
@click.option("--synthetic", type=click.IntRange(min=0), help="Synthetic rows per task [tiny 200].")
@click.option("--output-dir", help="Run folder [runs/sft-<preset>-stage<N>].")
@click.option("--max-length", type=click.IntRange(min=2), help="[256; tiny 128]")
@click.option(
    "--pad-tail/--no-pad-tail",
    default=True,
    show_default=True,
    help="Train the pad tail after each answer (dLLM's recipe).",
)
@click.option("--batch-size", type=click.IntRange(min=1))
@click.option("--grad-accum", type=click.IntRange(min=1))
@click.option("--epochs", type=float)
@click.option("--max-steps", type=click.IntRange(min=1))
@click.option("--lr", "learning_rate", type=float, help="[1e-4; tiny 1e-3]")
@click.option("--normalization", type=click.Choice(["sequence", "token"]), help="[sequence]")
@click.option("--save-every", type=click.IntRange(min=1))
@click.option("--keep-last", type=click.IntRange(min=1))
@click.option("--seed", type=int)
@click.option("--num-proc", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--resume", is_flag=True, help="Continue from the newest checkpoint in --output-dir.")
@friendly_errors
def sft(
    preset,
    stage,
    model,
    data,
    sources,
    schema,
    synthetic,
    output_dir,
    max_length,
    pad_tail,
    num_proc,
    resume,
    **options,
):
    """Instruction tuning with the MDLM loss on the response only; writes OUTPUT_DIR/model with the
    chat template and sampler defaults, ready for 'diffutron-sample chat --model'."""
    from diffutron_train.sft import run_sft, sft_run

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    loop = {k: v for k, v in options.items() if v is not None}
    fields = {
        "model": model,
        "data": data,
        "sources": list(sources),
        "schema": schema,
        "synthetic": synthetic,
        "max_length": max_length,
        "pad_tail": pad_tail,
        "num_proc": num_proc,
    }
    if output_dir:
        fields["output_dir"] = output_dir
    exported = run_sft(sft_run(preset, stage, loop=loop, **fields), resume=resume)
    click.echo(f"model saved to {exported}")
