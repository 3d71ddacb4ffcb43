"""``diffutron-sample serve``: the OpenAI-compatible server (diffutron-serve) for one model."""

from __future__ import annotations

import click

from diffutron_cli.options import friendly_errors, trust_remote_code_option
from diffutron_cli.sampler_options import cache_options, cache_settings


@click.command()
@click.option("--model", "model_path", required=True, help="Model directory or Hub id.")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind; 0.0.0.0 exposes the server to the network.",
)
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option(
    "--api-key",
    envvar="DIFFUTRON_API_KEY",
    help="Require 'Authorization: Bearer KEY' on the API, /metrics and /docs (not on /health, "
    "/ready and the page) [env DIFFUTRON_API_KEY; none by default].",
)
@click.option(
    "--max-batch",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Requests denoised together (continuous batching).",
)
@click.option(
    "--max-queue",
    type=click.IntRange(min=0),
    default=64,
    show_default=True,
    help="Requests waiting for a slot; the next one gets 429.",
)
@click.option("--model-name", help="The id clients use in 'model' [the folder's name].")
@click.option(
    "--metrics-public",
    is_flag=True,
    help="Serve /metrics without the API key (for a Prometheus that has none).",
)
@click.option(
    "--drain-timeout",
    type=click.FloatRange(min=0, max=86400),
    default=30.0,
    show_default=True,
    help="On SIGTERM or Ctrl-C: seconds to finish the requests in flight (new ones get 503) "
    "before the rest are ended.",
)
@click.option("--device", help="cpu, cuda, cuda:1 … [cuda when present]")
@click.option("--dtype", type=click.Choice(["float32", "bfloat16", "float16"]))
@cache_options
@trust_remote_code_option
@friendly_errors
def serve(
    model_path,
    host,
    port,
    api_key,
    max_batch,
    max_queue,
    model_name,
    metrics_public,
    drain_timeout,
    **options,
):
    """Serve a model over HTTP with the OpenAI API (/v1/chat/completions, /v1/completions,
    /v1/models), probes at /health and /ready, Prometheus metrics at /metrics, and a page at /
    that shows each answer denoising live. SIGTERM or Ctrl-C drains: requests in flight
    finish, new ones get 503."""
    from diffutron_sample.refresh import CACHE_SETTINGS
    from diffutron_serve import serve as run

    sampler = cache_settings(options)
    for name in CACHE_SETTINGS:
        options.pop(name)
    options["compile"] = options.pop("compile_step")
    run(
        model_path,
        host=host,
        port=port,
        api_key=api_key,
        max_batch=max_batch,
        max_queue=max_queue,
        model_name=model_name,
        drain_timeout=drain_timeout,
        metrics_public=metrics_public,
        sampler=sampler,
        **options,
    )
