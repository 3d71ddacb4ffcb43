"""``diffutron-train policy``: the learned commit policy (docs/sampling.md#learned-policy) of a
model, trained on the CPU from the model's own reference runs and written into its folder."""

from __future__ import annotations

import click

from diffutron_cli.options import SEED, FiniteFloat, friendly_errors, trust_remote_code_option


@click.command()
@click.option(
    "--model",
    "model_path",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="The model folder to learn for; the policy is written into it (commit_policy.*).",
)
@click.option(
    "--prompts",
    "prompts_file",
    type=click.Path(dir_okay=False),
    help="A JSON Lines prompts file (prompt or messages per row, as generate reads) "
    "[the embedded instructions' user turns].",
)
@click.option(
    "--precision",
    type=FiniteFloat(0.5, 1, max_open=True),
    default=0.998,
    show_default=True,
    help="How often a position the policy commits early must hold the reference's final token "
    "on held-out prompts; higher keeps closer to the reference, lower takes fewer passes.",
)
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--device", help="cpu, cuda, … [cpu: the policy is meant to be learned on one]")
@trust_remote_code_option
@friendly_errors
def policy(model_path, prompts_file, precision, seed, device, trust_remote_code):
    """Learn which positions' proposals are already final, for --policy learned: run the
    reference sampler (greedy, one token a step) on the prompts, log every masked position's
    features at every step, and fit a small classifier (about 1,300 parameters) to them."""
    from pathlib import Path

    import torch

    from diffutron_common import check_model_source
    from diffutron_sample import SamplerConfig, load_model
    from diffutron_sample.learned import check_replaceable_policy
    from diffutron_train.policy import train_policy

    check_model_source(model_path)
    check_replaceable_policy(Path(model_path))  # before the model loads
    prompts = _prompts(prompts_file)
    defaults = SamplerConfig.from_pretrained(model_path)
    model, tokenizer = load_model(
        model_path, device=device or "cpu", dtype=torch.float32, trust_remote_code=trust_remote_code
    )
    click.echo(
        f"learning from {len(prompts)} prompts, {defaults.max_new_tokens} new tokens each, "
        f"blocks of {defaults.block_length}",
        err=True,
    )
    info = train_policy(
        model_path, model, tokenizer, prompts, defaults, seed=seed, precision=precision
    )
    if not info["reached"]:
        click.echo(
            f"warning: no cut-off reached held-out precision {precision:g}; the policy keeps "
            "the highest, and will commit little early (more or other prompts may help)",
            err=True,
        )
    click.echo(
        f"commit policy saved to {model_path}: {info['positions']:,} positions logged, cut-off "
        f"{info['cutoff']:.3f}, held-out precision {info['precision']:.1%}, recall "
        f"{info['recall']:.1%} ({info['seconds']:.0f} s); use --policy learned"
    )


def _prompts(prompts_file: str | None) -> list:
    """The prompts: the file's rows (malformed ones reported) or the embedded instructions."""
    if prompts_file is None:
        from diffutron_data import instruction_conversations

        return [conversation[:-1] for conversation in instruction_conversations()]
    from diffutron_sample import read_prompts

    found = read_prompts(prompts_file)
    for problem in found.problems:
        click.echo(problem, err=True)
    return [row.prompt for row in found.rows]
