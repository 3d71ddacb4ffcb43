"""``diffutron-eval``: perplexity and the CETVEL benchmark subset."""

from diffutron_cli.options import app_group

evaluate = app_group(
    "diffutron-eval",
    "Evaluate a Diffutron model: masked pseudo-perplexity and the CETVEL Turkish subset.",
    envvar_prefix="DIFFUTRON_EVAL",
    lazy_subcommands={
        "perplexity": "diffutron_cli.eval_commands:perplexity",
        "bench": "diffutron_cli.eval_commands:bench",
        "tasks-path": "diffutron_cli.eval_commands:tasks_path",
        "lm-eval": "diffutron_cli.eval_commands:lm_eval_cli",
    },
)

if __name__ == "__main__":  # python -m diffutron_cli.evaluate: for torchrun and accelerate launch
    evaluate(prog_name="diffutron-eval")
