"""``diffutron-train``: continual pre-training and instruction tuning."""

from diffutron_cli.options import app_group

train = app_group(
    "diffutron-train",
    "Train Diffutron models: LoRA continual pre-training (cpt), MDLM instruction tuning (sft) "
    "and the learned commit policy (policy).",
    envvar_prefix="DIFFUTRON_TRAIN",
    lazy_subcommands={
        "prepare": "diffutron_cli.prepare:prepare",
        "cpt": "diffutron_cli.cpt:cpt",
        "sft": "diffutron_cli.sft:sft",
        "configs": "diffutron_cli.configs_cmd:configs",
        "export": "diffutron_cli.export_cmd:export",
        "policy": "diffutron_cli.policy_cmd:policy",
    },
)

if __name__ == "__main__":  # python -m diffutron_cli.train: for accelerate launch and torchrun
    train()
