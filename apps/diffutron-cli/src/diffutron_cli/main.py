"""``diffutron``: the umbrella app; ``diffutron train|sample|eval`` are the same groups as the
stand-alone ``diffutron-train``, ``diffutron-sample`` and ``diffutron-eval``."""

from diffutron_cli.options import app_group

diffutron = app_group(
    "diffutron",
    "Diffutron: train, run and evaluate masked diffusion language models for Turkish.",
    envvar_prefix="DIFFUTRON",
    lazy_subcommands={
        "train": "diffutron_cli.train:train",
        "sample": "diffutron_cli.sample:sample",
        "eval": "diffutron_cli.evaluate:evaluate",
        "info": "diffutron_cli.info:info",
        "demo": "diffutron_cli.demo:demo",
    },
)
