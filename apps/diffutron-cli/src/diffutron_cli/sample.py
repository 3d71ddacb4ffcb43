"""``diffutron-sample``: generation, chat and infilling."""

from diffutron_cli.options import app_group

sample = app_group(
    "diffutron-sample",
    "Generate with a Diffutron model: generate, chat and infill by iterative unmasking.",
    envvar_prefix="DIFFUTRON_SAMPLE",
    lazy_subcommands={},
)
