"""The options that generate, chat and infill share (model, device, sampler settings), and the
model, tokenizer, sampler settings and seeded generator they resolve to."""

from __future__ import annotations

import dataclasses

import click

from diffutron_cli.options import SEED, FiniteFloat, trust_remote_code_option, with_options

CACHE_OPTIONS = [
    click.option(
        "--cache",
        type=click.Choice(["none", "prefix", "dual"]),
        help="Block cache for ModernBERT models: 'prefix' recomputes the active block and what "
        "follows it at each step, 'dual' the active block only; the other columns' keys and "
        "values come from a full pass at each block's start, and again when they drift "
        "(--cache-refresh) [none; other models: none].",
    ),
    click.option(
        "--cache-interval",
        type=click.IntRange(min=1),
        help="With --cache, also refresh the cache after this many steps inside a block "
        "[block starts only].",
    ),
    click.option(
        "--cache-refresh",
        type=click.Choice(["fixed", "adaptive"]),
        help="With --cache: 'fixed' refreshes at block starts (and every --cache-interval "
        "steps); 'adaptive' also computes a row again in full once the columns beside its "
        "block drift --cache-drift from their states at the refresh [adaptive; fixed with "
        "--cache-interval].",
    ),
    click.option(
        "--cache-drift",
        type=FiniteFloat(min=0),
        help="The adaptive refresh's bound on the relative drift: 0 refreshes at every step "
        "(the uncached sampler), larger refreshes less [0.1].",
    ),
    click.option(
        "--cache-delayed/--no-cache-delayed",
        default=None,
        help="With --cache, delayed caching: a committed column of the block is computed once "
        "more, then read from the cache (faster, less faithful: docs/sampling.md"
        "#delayed-caching) [off].",
    ),
    click.option(
        "--compile",
        "compile_step",
        is_flag=True,
        help="On CUDA, run each step through torch.compile with bucketed shapes (the first "
        "steps of each shape compile); elsewhere the log says so and it runs eagerly.",
    ),
]


POLICY_OPTIONS = [
    click.option(
        "--entropy-bound",
        type=FiniteFloat(),
        help="Commit, most confident first, while the summed entropy less its largest term "
        "stays below this (EB-sampler; 0 is one token a step).",
    ),
    click.option(
        "--margin-threshold",
        type=FiniteFloat(),
        help="Commit every position whose top-two probability gap is at least this.",
    ),
    click.option(
        "--kl-threshold",
        type=FiniteFloat(),
        help="Commit every position whose distribution moved less than this KL since the "
        "last step (KLASS).",
    ),
    click.option(
        "--dilation",
        type=int,
        help="Positions committed in one step lie at least this far apart [1: off].",
    ),
    click.option(
        "--policy",
        type=click.Choice(["learned", "none"]),
        help="'learned': commit what the model's learned commit policy calls final "
        "(diffutron-train policy writes it) [none].",
    ),
]


def cache_settings(kwargs) -> dict:
    """The sampler changes the cache options ask for ('none' is no cache; ``--cache`` alone
    refreshes adaptively)."""
    from diffutron_sample import SamplerConfig
    from diffutron_sample.refresh import REFRESH_SETTINGS, adaptive_by_default

    found = {}
    if kwargs.get("cache") is not None:
        found["cache"] = SamplerConfig.parse("cache", kwargs["cache"])
    for name in (*REFRESH_SETTINGS, "cache_delayed"):
        if kwargs.get(name) is not None:
            found[name] = kwargs[name]
    if adaptive_by_default(found):
        found["cache_refresh"] = "adaptive"  # --cache alone: the refresh that keeps fidelity
    if kwargs.get("policy") is not None:
        found["policy"] = SamplerConfig.parse("policy", kwargs["policy"])
    return found


def cache_options(function):
    """``--cache`` and its refresh options, and ``--compile`` (generation commands and serve)."""
    return with_options(function, CACHE_OPTIONS)


def sampler_options(function):
    """Model, device and sampler options shared by generate, chat and infill."""
    options = [
        click.option(
            "--model",
            "model_path",
            required=True,
            help="Model directory, Hub id, or LoRA adapter folder (merged into its base model).",
        ),
        click.option(
            "--preset",
            type=click.Choice(["model", "paper"]),
            default="model",
            show_default=True,
            help="Sampler defaults: the model's sampler_config.json (the paper's where it has "
            "none), or the paper's (temperature 0.1, block 32, repetition penalty 1.2, steps = "
            "max_new_tokens).",
        ),
        click.option("--steps", type=int, help="Denoising steps over all blocks."),
        click.option("--max-new-tokens", type=int, help="Tokens to generate."),
        click.option("--block-length", type=int, help="Tokens per semi-autoregressive block."),
        click.option("--temperature", type=FiniteFloat(), help="0 is greedy."),
        click.option("--remasking", type=click.Choice(["low_confidence", "random"])),
        click.option("--stochastic-transfer/--no-stochastic-transfer", default=None),
        click.option("--cfg-scale", type=FiniteFloat(), help="Classifier-free guidance; 0 is off."),
        click.option("--repetition-penalty", type=FiniteFloat(), help="1.0 is off."),
        click.option(
            "--threshold",
            type=FiniteFloat(),
            help="Fast mode: commit every position at least this confident (e.g. 0.9).",
        ),
        *POLICY_OPTIONS,
        click.option(
            "--early-stop/--no-early-stop",
            default=None,
            help="Stop a row at its end token; its pad tail costs no passes.",
        ),
        *CACHE_OPTIONS,
        click.option("--seed", type=SEED, default=0, show_default=True),
        click.option("--device", help="cpu, cuda, cuda:1 … [cuda when present]"),
        click.option(
            "--dtype",
            type=click.Choice(["float32", "bfloat16", "float16"]),
            help="[bfloat16 on CUDA, float32 on CPU]",
        ),
        click.option("--show-steps", is_flag=True, help="Animate the canvas as it is unmasked."),
        click.option(
            "--chat-template",
            type=click.Path(dir_okay=False),
            help="A Jinja chat template file to use instead of the tokenizer's [its own; dLLM's "
            "BERT chat format where it has none].",
        ),
        trust_remote_code_option,
    ]
    return with_options(function, options)


def load_for_sampling(kwargs):
    """(model, tokenizer, config, generator) from the shared options; the model wrapped with how
    it runs (``--compile``)."""
    from diffutron_common import check_model_source
    from diffutron_core import generator
    from diffutron_sample import (
        Execution,
        MaskedLM,
        SamplerConfig,
        find_commit_policy,
        freeze_heap,
        load_model,
    )
    from diffutron_sample.policies import RULE_SETTINGS

    check_model_source(kwargs["model_path"])  # a missing folder is named before anything else
    names = [field.name for field in dataclasses.fields(SamplerConfig)]  # one option each
    given = {k: kwargs[k] for k in names if kwargs.get(k) is not None}
    given.update(cache_settings(kwargs))
    if any(given.get(name) is not None for name in RULE_SETTINGS):  # a rule asked for replaces
        given = {**dict.fromkeys(RULE_SETTINGS), **given}  # the model's own (as a request's does)
    if kwargs["preset"] == "paper":
        config = SamplerConfig.paper(given.pop("max_new_tokens", 128), **given)
    else:  # settings are checked before the (slow) model load
        config = SamplerConfig.from_pretrained(kwargs["model_path"], **given)
    template = None
    if kwargs.get("chat_template"):
        from diffutron_common import read_text

        template = read_text(kwargs["chat_template"], what="chat template")
    model, tokenizer = load_model(
        kwargs["model_path"],
        device=kwargs["device"],
        dtype=kwargs["dtype"],
        trust_remote_code=kwargs["trust_remote_code"],
        chat_template=template,
    )
    seeded = generator(kwargs["seed"], model.device)
    execution = Execution(compile=kwargs.get("compile_step", False))
    policy = find_commit_policy(
        kwargs["model_path"], tokenizer, required=config.policy == "learned"
    )
    lm = MaskedLM(model, execution=execution, commit_policy=policy)
    freeze_heap()  # no full collection walks the model while generating
    return lm, tokenizer, config, seeded


def model_inputs(name_or_path: str) -> list[str]:
    """The folders a model is read from: itself, and an adapter folder's base model."""
    from diffutron_common.adapters import adapter_base, is_adapter_folder

    found = [name_or_path]
    if is_adapter_folder(name_or_path):
        found.append(adapter_base(name_or_path))
    return found
