"""``diffutron-sample``: generate, chat and infill by iterative unmasking."""

from __future__ import annotations

import json
import sys

import click

from diffutron_cli.options import (
    SEED,
    FiniteFloat,
    app_group,
    config_files,
    friendly_errors,
    trust_remote_code_option,
)

sample = app_group(
    "diffutron-sample",
    "Generate with a Diffutron model: generate, chat and infill by iterative unmasking.",
    envvar_prefix="DIFFUTRON_SAMPLE",
    lazy_subcommands={},
)

SAMPLER_OPTIONS = (
    "steps",
    "max_new_tokens",
    "block_length",
    "temperature",
    "remasking",
    "stochastic_transfer",
    "cfg_scale",
    "repetition_penalty",
    "threshold",
    "early_stop",
)


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
        click.option(
            "--early-stop/--no-early-stop",
            default=None,
            help="Stop a row at its end token; its pad tail costs no passes.",
        ),
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
    for option in reversed(options):
        function = option(function)
    return function


def _load(kwargs):
    """(model, tokenizer, config, generator) from the shared options."""
    import torch

    from diffutron_sample import SamplerConfig, load_model

    given = {k: kwargs[k] for k in SAMPLER_OPTIONS if kwargs.get(k) is not None}
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
    generator = torch.Generator(device=model.device).manual_seed(kwargs["seed"])
    return model, tokenizer, config, generator


def model_inputs(name_or_path: str) -> list[str]:
    """The folders a model is read from: itself, and an adapter folder's base model."""
    from diffutron_common.adapters import adapter_base, is_adapter_folder

    found = [name_or_path]
    if is_adapter_folder(name_or_path):
        found.append(adapter_base(name_or_path))
    return found


class LiveCanvas:
    """A sampler callback that redraws the first canvas row in place (rich): its last ``tail``
    positions (the generated part), or all of it when ``tail`` is None."""

    def __init__(self, tokenizer, tail: int | None = None):
        from rich.console import Console
        from rich.live import Live

        self.tokenizer, self.tail = tokenizer, tail
        self.live = Live(console=Console(stderr=True), auto_refresh=False, transient=True)

    def __enter__(self):
        self.live.__enter__()
        return self

    def __exit__(self, *exc):
        self.live.__exit__(*exc)

    def __call__(self, step: int, canvas) -> None:
        from rich.text import Text

        from diffutron_sample import render_canvas

        row = canvas[0] if self.tail is None else canvas[0, -self.tail :]
        shown = render_canvas(self.tokenizer, row)
        self.live.update(Text(f"step {step}\n", style="dim") + Text(shown), refresh=True)


def _run(model, tokenizer, config, generator, prompts, *, chat, show_steps):
    """Generate for a list of prompts (one batch); returns the trimmed replies."""
    from contextlib import nullcontext

    from diffutron_sample import batch_prompt_ids, decode_new, generate

    input_ids, mask = batch_prompt_ids(tokenizer, prompts, chat=chat)
    live = LiveCanvas(tokenizer, config.max_new_tokens) if show_steps else nullcontext()
    with live:
        canvas = generate(
            model,
            input_ids,
            config,
            mask_token_id=tokenizer.mask_token_id,
            attention_mask=mask,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id or 0,
            generator=generator,
            callback=live if show_steps else None,
        )
    return decode_new(tokenizer, canvas, config.max_new_tokens)


@sample.command()
@sampler_options
@click.option("--prompt", "prompts", multiple=True, help="A prompt (repeat for a batch).")
@click.option(
    "--prompts-file",
    type=click.Path(exists=True, dir_okay=False),
    help="JSONL rows with 'prompt' (or 'messages'); outputs add 'output'.",
)
@click.option(
    "--output", type=click.Path(dir_okay=False), help="Write JSONL here instead of stdout."
)
@click.option("--raw", is_flag=True, help="Continue the text as is: no chat template.")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@friendly_errors
def generate(prompts, prompts_file, output, raw, batch_size, **kwargs):
    """Generate replies (or continuations with --raw) for prompts. With --output the JSONL file
    appears only when every row is done (an existing file is replaced then, never before)."""
    from contextlib import nullcontext

    from diffutron_common import atomic_write, check_output_file
    from diffutron_sample import PromptRow, SampleError, read_prompts

    if prompts and prompts_file:
        raise click.UsageError("give --prompt (one or more) or --prompts-file, not both")
    if not prompts and not prompts_file:
        raise click.UsageError("give --prompt (one or more) or --prompts-file")
    if kwargs["show_steps"] and (prompts_file or len(prompts) > 1):
        raise click.UsageError("--show-steps animates one prompt; give a single --prompt")
    if output:  # before any work: never a folder, never an input (prompts, model, config)
        inputs = [
            prompts_file,
            kwargs["chat_template"],
            *model_inputs(kwargs["model_path"]),
            *config_files(),
        ]
        check_output_file(output, option="--output", inputs=inputs)
    if prompts:
        from diffutron_common import check_text

        for number, prompt in enumerate(prompts, 1):
            if not prompt.strip():
                raise SampleError(f"--prompt number {number} is empty; give some text")
            check_text(prompt, f"--prompt number {number}")
        rows = [PromptRow(0, {"prompt": p}, p) for p in prompts]
    else:
        found = read_prompts(prompts_file)
        rows = found.rows
        for problem in found.problems:
            click.echo(problem, err=True)
    model, tokenizer, config, generator = _load(kwargs)
    sink = atomic_write(output, option="--output") if output else nullcontext(None)
    with (
        sink as handle,
        click.progressbar(
            length=len(rows), label="generating", file=sys.stderr, hidden=not prompts_file
        ) as bar,
    ):
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]
            replies = _run(
                model,
                tokenizer,
                config,
                generator,
                [r.prompt for r in batch],
                chat=not raw,
                show_steps=kwargs["show_steps"],
            )
            for row, reply in zip(batch, replies, strict=True):
                if prompts and not output:
                    click.echo(reply)
                else:
                    line = json.dumps({**row.row, "output": reply}, ensure_ascii=False)
                    click.echo(line, file=handle)
            bar.update(len(batch))
    if prompts_file and found.problems:
        click.echo(f"skipped {len(found.problems)} malformed row(s)", err=True)


@sample.command()
@sampler_options
@click.option("--system", help="A system message that opens the conversation.")
@friendly_errors
def chat(system, **kwargs):
    """Chat in the terminal. /reset clears the history, /set key=value changes a sampler setting,
    /quit leaves."""
    from diffutron_common import check_text
    from diffutron_sample import ChatSession, SampleError

    if system is not None:
        check_text(system, "--system")
    model, tokenizer, config, generator = _load(kwargs)
    session = ChatSession(model, tokenizer, config, system=system, generator=generator)
    click.echo("Diffutron chat: /reset, /set key=value, /quit", err=True)
    undecodable = 0
    while True:
        try:
            text = click.prompt("sen", prompt_suffix="> ", default="", show_default=False)
            undecodable = 0
        except (EOFError, click.Abort):
            break
        except UnicodeDecodeError as exc:  # the terminal sent bytes that are not UTF-8
            undecodable += 1
            byte = exc.object[exc.start] if exc.start < len(exc.object) else 0
            click.echo(
                f"Error: the message is not valid UTF-8 (byte 0x{byte:02x}); check the "
                "terminal's encoding and type it again",
                err=True,
            )
            if undecodable >= 3:  # the input stream cannot be read on
                raise click.ClickException("the input is not UTF-8; chat ended") from None
            continue
        text = text.strip()
        if not text:
            continue
        if text in ("/quit", "/exit"):
            break
        if text == "/reset":
            session.reset()
            click.echo("(history cleared)")
            continue
        try:
            if text == "/set" or text.startswith("/set "):
                key, config = session.set_text(text[4:])
                click.echo(f"({key} = {getattr(config, key)})")
                continue
            if text.startswith("/"):
                click.echo("(commands: /reset, /set key=value, /quit)")
                continue
            if kwargs["show_steps"]:
                with LiveCanvas(tokenizer, session.config.max_new_tokens) as live:
                    reply = session.ask(text, callback=live)
            else:
                reply = session.ask(text)
        except SampleError as exc:
            click.echo(f"Error: {exc}", err=True)
            continue
        click.echo(f"model> {reply}")


@sample.command()
@sampler_options
@click.option("--text", required=True, help="Text with mask tokens (e.g. <mask>) to fill.")
@friendly_errors
def infill(text, **kwargs):
    """Fill the mask tokens placed anywhere in a text."""
    import torch

    from diffutron_common import check_text
    from diffutron_sample import infill as fill

    check_text(text, "--text")
    model, tokenizer, config, generator = _load(kwargs)
    if tokenizer.mask_token not in text:
        raise click.UsageError(f"--text holds no {tokenizer.mask_token}: mark what to fill with it")
    ids = torch.tensor([tokenizer(text)["input_ids"]])
    from contextlib import nullcontext

    live = LiveCanvas(tokenizer) if kwargs["show_steps"] else None
    with live if live is not None else nullcontext():
        canvas = fill(
            model,
            ids,
            config,
            mask_token_id=tokenizer.mask_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            generator=generator,
            callback=live,
        )
    click.echo(tokenizer.decode(canvas[0], skip_special_tokens=True))
