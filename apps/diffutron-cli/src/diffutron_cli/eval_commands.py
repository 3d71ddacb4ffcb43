"""The ``diffutron-eval`` commands; each imports its library only when it runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from diffutron_cli.options import (
    SEED,
    FiniteFloat,
    config_files,
    friendly_errors,
    trust_remote_code_option,
)


def _task_names() -> tuple[str, ...]:
    """The CETVEL tasks as diffutron-eval lists them (its lm-eval group file), read without
    importing it, so ``--help`` stays fast."""
    import importlib.util
    from pathlib import Path

    import yaml

    spec = importlib.util.find_spec("diffutron_eval")
    if spec is None or not spec.submodule_search_locations:
        return ()
    group = Path(spec.submodule_search_locations[0]) / "lm_tasks" / "_diffutron_cetvel.yaml"
    return tuple(yaml.safe_load(group.read_text(encoding="utf-8"))["task"])


TASK_NAMES = _task_names()
SUITES = ("cetvel", "grammar", "knowledge", "turkish")
LIKELIHOODS = ("auto", "pll", "pll-word-l2r", "elbo")
"""diffutron_eval's suites and likelihoods, named here so that --help does not import it."""


def launch_epilog(command: str) -> str:
    """The ``--help`` lines on running ``command`` in several processes."""
    return (
        "\b\nOn several GPUs (or CPU processes), each process scores its share and rank 0 "
        "writes and prints:\n"
        f"  torchrun --standalone --nproc_per_node 4 -m diffutron_cli.evaluate {command} ..."
    )


@click.command(epilog=launch_epilog("perplexity --model DIR --data FILE"))
@click.option("--model", required=True, help="Masked LM directory or Hub id.")
@click.option(
    "--data",
    "data",
    multiple=True,
    help="Texts: files (.txt a text a line; .jsonl/.csv/.parquet with --column) or a Hub id "
    "[the paper's Bilkent Turkish Writings].",
)
@click.option("--column", default="text", show_default=True, help="Text column of table files.")
@click.option("--split", default="test", show_default=True, help="Split of a Hub dataset.")
@click.option("--max-length", type=click.IntRange(min=4), default=512, show_default=True)
@click.option(
    "--mask-prob",
    type=FiniteFloat(0, 1, min_open=True, max_open=True),
    default=0.15,
    show_default=True,
)
@click.option("--elbo", is_flag=True, help="The MDLM bound instead of pseudo-perplexity.")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--device", help="cpu, cuda, … [cuda when present]")
@click.option("--output", type=click.Path(dir_okay=False), help="Write the result as JSON here.")
@trust_remote_code_option
@friendly_errors
def perplexity(
    model,
    data,
    column,
    split,
    max_length,
    mask_prob,
    elbo,
    seed,
    batch_size,
    device,
    output,
    trust_remote_code,
):
    """Masked-token pseudo-perplexity as the paper: 15% of each window's tokens masked with a
    seeded generator, exp of the mean cross-entropy over them (deterministic, batched)."""
    from diffutron_common import check_output_file, write_text
    from diffutron_eval import BILKENT_WRITINGS, read_texts, start_processes
    from diffutron_eval import perplexity as measure
    from diffutron_sample import load_model

    if output:  # before any work: never a folder, never an input (data, model, config)
        from diffutron_cli.sampler_options import model_inputs

        inputs = [*(d for d in data if Path(d).exists()), *model_inputs(model), *config_files()]
        check_output_file(output, option="--output", inputs=inputs)
    texts = read_texts(list(data) or [BILKENT_WRITINGS], column=column, split=split)
    processes = start_processes(device)  # under torchrun: this rank's share and device
    lm, tokenizer = load_model(model, device=processes.device, trust_remote_code=trust_remote_code)
    result = measure(
        lm,
        tokenizer,
        texts,
        max_length=max_length,
        mask_prob=mask_prob,
        seed=seed,
        batch_size=batch_size,
        elbo=elbo,
    )
    if not processes.main:  # rank 0 writes and prints
        return
    record = {"model": model, "data": list(data) or [BILKENT_WRITINGS], **result.to_dict()}
    if output:
        write_text(output, json.dumps(record, indent=2) + "\n", option="--output")
    label = "MDLM-bound perplexity" if elbo else "pseudo-perplexity"
    click.echo(
        f"{label} {result.perplexity:.4f} ({result.scored_tokens:,} tokens scored in "
        f"{result.windows:,} windows of {result.texts:,} texts)"
    )


@click.command(epilog=launch_epilog("bench --model DIR"))
@click.option("--model", required=True, help="Masked diffusion LM directory or Hub id.")
@click.option(
    "--suite",
    type=click.Choice(SUITES),
    help="cetvel (the paper's 7 tasks), grammar (TurBLiMP + MultiBLiMP-tur), knowledge "
    "(TurkishMMLU), turkish (all) [cetvel].",
)
@click.option(
    "--tasks",
    "tasks",
    multiple=True,
    help=f"Tasks (repeat or comma-separate), instead of a suite: {', '.join(TASK_NAMES)}, "
    "turblimp_*, multiblimp_tur, turkishmmlu_*; groups diffutron_cetvel, turblimp, turkishmmlu.",
)
@click.option(
    "--data-files",
    "data_files",
    multiple=True,
    metavar="TASK=PATH",
    help="A local JSONL/CSV/TSV/parquet file with the Hub dataset's columns, instead of the Hub "
    "(TurBLiMP's ';'-separated CSVs as shipped; turblimp=DIR or turkishmmlu=DIR: a folder of "
    "the group's files).",
)
@click.option(
    "--likelihood",
    type=click.Choice(LIKELIHOODS),
    default="auto",
    show_default=True,
    help="How choices are scored: pll, pll-word-l2r (TurBLiMP's), elbo (the MDLM bound); auto: "
    "a sentence alone (a minimal pair) by pll-word-l2r, a continuation by elbo.",
)
@click.option(
    "--drop-equal-pairs",
    is_flag=True,
    help="Leave out minimal pairs whose two sentences are the same (TurBLiMP's files hold 20), "
    "counted in table.md; without it such a pair is an error.",
)
@click.option("--limit", type=int, help="At most N examples per task (quick checks).")
@click.option("--mc-num", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--device", help="cpu, cuda, … [cuda when present]")
@click.option(
    "--output-dir",
    default="runs/bench",
    show_default=True,
    help="New, empty, or written by an earlier bench; its files are replaced when all is done.",
)
@click.option(
    "--baseline", metavar="hf:ID", help="Also run an autoregressive model (lm-eval's hf)."
)
@click.option(
    "--turkish-casing",
    is_flag=True,
    help="Lower-case XCOPA choices by Turkish rules (I->ı), unlike CETVEL: scores then differ.",
)
@trust_remote_code_option
@friendly_errors
def bench(
    model,
    suite,
    tasks,
    data_files,
    limit,
    mc_num,
    batch_size,
    seed,
    device,
    output_dir,
    likelihood,
    drop_equal_pairs,
    baseline,
    turkish_casing,
    trust_remote_code,
):
    """Run a suite of Turkish tasks through lm-eval (the paper's seven CETVEL tasks unless asked
    otherwise); write lm-eval's results JSON, a Markdown table beside the published columns, a
    bar chart and report.html (tables, chart, each phenomenon's worst pairs)."""
    import os

    from diffutron_eval import run_bench

    if turkish_casing:
        os.environ["DIFFUTRON_TURKISH_CASING"] = "1"
    names = [n.strip() for t in tasks for n in t.split(",") if n.strip()]
    result = run_bench(
        model,
        output_dir=output_dir,
        tasks=names,
        data_files=data_files,
        limit=limit,
        mc_num=mc_num,
        batch_size=batch_size,
        seed=seed,
        device=device,
        baseline=baseline,
        trust_remote_code=trust_remote_code,
        suite=suite,
        likelihood=likelihood,
        drop_equal_pairs=drop_equal_pairs,
    )
    if result.rank != 0:  # rank 0 writes and prints
        return
    click.echo(result.files["table"].read_text(encoding="utf-8"))
    for kind, path in result.files.items():
        click.echo(f"{kind}: {path}")


@click.command("tasks-path")
def tasks_path():
    """Print the folder of the task YAMLs, for 'lm_eval --include_path'."""
    from diffutron_eval import tasks_path as where

    click.echo(str(where()))


@click.command(
    "lm-eval",
    context_settings={
        "ignore_unknown_options": True,
        "allow_extra_args": True,
        "help_option_names": [],
    },
)
@click.pass_context
def lm_eval_cli(ctx):
    """lm-eval's own command line with the 'diffutron' model registered, e.g.
    diffutron-eval lm-eval --model diffutron --model_args pretrained=DIR --device cpu
    --include_path "$(diffutron-eval tasks-path)" --tasks diffutron_cetvel"""
    from lm_eval.__main__ import cli_evaluate

    import diffutron_eval  # noqa: F401  (registers the model)

    sys.argv = ["lm_eval", *ctx.args]
    cli_evaluate()
