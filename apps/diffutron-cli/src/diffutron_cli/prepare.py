"""``diffutron-train prepare cpt|sft``: build the training data, as the training commands do."""

from __future__ import annotations

import logging

import click

from diffutron_cli.options import SEED, friendly_errors, trust_remote_code_option

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
    for option in reversed(options):
        function = option(function)
    return function


def _summary(manifest: dict, dropped: dict, output_dir: str) -> None:
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
def cpt(
    preset,
    sources,
    tokenizer,
    output_dir,
    max_length,
    seed,
    num_proc,
    overwrite,
    trust_remote_code,
    sample_size,
):
    """Build the continual pre-training corpus: filter by token length (never truncate), sample,
    shuffle, tokenise, save with a manifest."""
    from diffutron_data import Pool, Source, build_cpt_corpus, cpt_preset, load_tokenizer

    recipe = cpt_preset(preset)
    pools = (
        [Pool("sources", [Source.parse(s) for s in sources], sample_size)]
        if sources
        else recipe.pools
    )
    tokenizer_name = tokenizer or recipe.tokenizer
    output_dir = output_dir or f"runs/data/cpt-{preset}"
    manifest = build_cpt_corpus(
        pools,
        load_tokenizer(tokenizer_name, trust_remote_code=trust_remote_code),
        output_dir,
        tokenizer_name=tokenizer_name,
        max_length=max_length or recipe.max_length,
        seed=seed,
        num_proc=num_proc,
        overwrite=overwrite,
    )
    _summary(manifest, manifest["total"]["dropped"], output_dir)
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
def sft(
    preset,
    sources,
    tokenizer,
    output_dir,
    max_length,
    seed,
    num_proc,
    overwrite,
    trust_remote_code,
    stage,
    schema,
    truncate_response,
    synthetic,
    synthetic_tasks,
):
    """Build instruction-tuning rows: chat template, response-only maskable, length checks."""
    from diffutron_data import Source, build_sft_dataset, load_tokenizer, sft_preset
    from diffutron_data.synthetic import TASKS, embedded_task_rows, synthetic_conversations

    recipe = sft_preset(preset, stage)
    parsed = [Source.parse(s) for s in sources] if sources else recipe.sources
    per_task = recipe.synthetic_per_task if synthetic is None else synthetic
    tasks = list(synthetic_tasks) or list(recipe.synthetic_tasks) or list(TASKS)
    rows = embedded_task_rows(tasks, per_task, seed=seed)
    tokenizer_name = tokenizer or recipe.tokenizer
    output_dir = output_dir or f"runs/data/sft-{preset}" + (
        f"-stage{stage}" if preset == "paper" else ""
    )
    manifest = build_sft_dataset(
        parsed,
        load_tokenizer(tokenizer_name, trust_remote_code=trust_remote_code),
        output_dir,
        tokenizer_name=tokenizer_name,
        schema=schema,
        max_length=max_length or recipe.max_length,
        truncate_response=truncate_response,
        extra_conversations=synthetic_conversations(rows),
        extra_name="synthetic",
        num_proc=num_proc,
        overwrite=overwrite,
    )
    _summary(manifest, manifest["dropped"], output_dir)
