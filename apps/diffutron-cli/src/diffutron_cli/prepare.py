"""``diffutron-train prepare cpt|sft``: build the training data, as the training commands do."""

from __future__ import annotations

import logging

import click

from diffutron_cli.options import SEED, friendly_errors, trust_remote_code_option, with_options

SOURCE_HELP = (
    "A local .txt/.jsonl/.parquet file, 'embedded:corpus', or 'hub:ID'; options after '?', "
    "e.g. 'hub:wikimedia/wikipedia?config=20231101.tr&column=text' or 'notes.txt?mode=paragraph'. "
    "Repeat for several; replaces the preset's sources."
)


@click.group()
def prepare() -> None:
    """Build training data: the CPT corpus (cpt) or instruction-tuning rows (sft)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


def _common(function):
    options = [
        click.option(
            "--preset",
            type=click.Choice(["tiny", "paper"]),
            default="tiny",
            show_default=True,
            help="tiny: embedded data, offline; paper: the published recipe (Hub).",
        ),
        click.option("--source", "sources", multiple=True, help=SOURCE_HELP),
        click.option("--tokenizer", help="Tokenizer: Hub id, local dir or 'tiny' [preset's]."),
        click.option(
            "--output-dir",
            type=click.Path(file_okay=False),
            help="Where the dataset and manifest.json go [runs/data/<kind>-<preset>].",
        ),
        click.option("--max-length", type=click.IntRange(min=2), help="Token limit [preset's]."),
        click.option("--seed", type=SEED, default=0, show_default=True),
        click.option(
            "--num-proc",
            type=click.IntRange(min=1),
            default=1,
            show_default=True,
            help="Tokenising processes.",
        ),
        click.option(
            "--overwrite",
            is_flag=True,
            help="Replace an output dir that an earlier 'prepare' wrote (never any other folder).",
        ),
        trust_remote_code_option,
    ]
    return with_options(function, options)


def _prepare(spec, output_dir, num_proc: int, overwrite: bool, trust_remote_code: bool):
    """Build the data ``spec`` describes (the library's one entry point for it)."""
    from diffutron_data import prepare_data

    return prepare_data(
        spec,
        output_dir,
        num_proc=num_proc,
        overwrite=overwrite,
        trust_remote_code=trust_remote_code,
    )


def _summary(manifest: dict, dropped: dict, output_dir) -> None:
    reasons = ", ".join(f"{reason} {count}" for reason, count in dropped.items() if count)
    click.echo(f"saved {manifest['rows']} rows ({manifest['tokens']} tokens) to {output_dir}")
    click.echo(f"dropped: {reasons or 'nothing'}; details in {output_dir}/manifest.json")


@prepare.command()
@_common
@click.option(
    "--sample-size",
    type=click.IntRange(min=1),
    help="Keep this many documents of --source after filtering (all by default).",
)
@friendly_errors
def cpt(output_dir, num_proc, overwrite, trust_remote_code, **choices):
    """Build the continual pre-training corpus: filter by token length (never truncate), sample,
    shuffle, tokenise, save with a manifest."""
    from diffutron_data import CPTDataSpec

    manifest, folder = _prepare(
        CPTDataSpec(**choices), output_dir, num_proc, overwrite, trust_remote_code
    )
    _summary(manifest, manifest["total"]["dropped"], folder)
    padding = manifest["padding"]
    click.echo(
        f"padding at batch {padding['batch_size']}: {padding['unpacked']:.1%} unpacked, "
        f"{padding['packed']:.1%} packed"
    )


@prepare.command()
@_common
@click.option(
    "--stage",
    type=click.IntRange(1, 2),
    default=1,
    show_default=True,
    help="paper preset: 1 = LlamaTurk-Instruction-Set, 2 = InstrucTurca.",
)
@click.option(
    "--schema",
    type=click.Choice(["auto", "alpaca", "instructurca", "messages"]),
    default="auto",
    show_default=True,
)
@click.option(
    "--truncate-response",
    is_flag=True,
    help="Cut responses that do not fit instead of dropping the row.",
)
@click.option(
    "--synthetic",
    type=click.IntRange(min=0),
    help="Add up to N rows of each synthetic task from the embedded corpus [tiny: 300].",
)
@click.option(
    "--synthetic-task",
    "synthetic_tasks",
    multiple=True,
    help="A synthetic task to add (repeat) [tiny: is_question, first_word, repeat; else all].",
)
@friendly_errors
def sft(output_dir, num_proc, overwrite, trust_remote_code, **choices):
    """Build instruction-tuning rows: chat template, response-only maskable, length checks."""
    from diffutron_data import SFTDataSpec

    manifest, folder = _prepare(
        SFTDataSpec(**choices), output_dir, num_proc, overwrite, trust_remote_code
    )
    _summary(manifest, manifest["dropped"], folder)
