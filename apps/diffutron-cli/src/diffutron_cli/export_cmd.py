"""``diffutron-train export``: a LoRA adapter folder merged into its base, as a plain model."""

from __future__ import annotations

import click

from diffutron_cli.options import friendly_errors, trust_remote_code_option


@click.command()
@click.option(
    "--adapter",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="A LoRA adapter folder (adapter_config.json, adapter_model.safetensors) of PEFT or dLLM.",
)
@click.option(
    "--output",
    required=True,
    type=click.Path(file_okay=False),
    help="The merged model folder to write (new, empty, or one this command wrote).",
)
@trust_remote_code_option
@friendly_errors
def export(adapter, output, trust_remote_code):
    """Merge a LoRA adapter into its base model (base_model_name_or_path) and write a plain
    Hugging Face model folder: safetensors, tokenizer, sampler_config.json where there is one."""
    from diffutron_cli.sampler_options import model_inputs
    from diffutron_common import check_output_folder
    from diffutron_train import export_adapter

    check_output_folder(output, "model", option="--output", inputs=model_inputs(adapter))
    click.echo(
        f"model saved to {export_adapter(adapter, output, trust_remote_code=trust_remote_code)}"
    )
