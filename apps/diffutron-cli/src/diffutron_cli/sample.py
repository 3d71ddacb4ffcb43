"""``diffutron-sample``: generate, chat and infill by iterative unmasking."""

from __future__ import annotations

import json
import sys
from typing import cast

import click

from diffutron_cli.live import LiveCanvas
from diffutron_cli.options import app_group, config_files, friendly_errors
from diffutron_cli.sampler_options import load_for_sampling, model_inputs, sampler_options

sample = app_group(
    "diffutron-sample",
    "Generate with a Diffutron model: generate, chat and infill by iterative unmasking.",
    envvar_prefix="DIFFUTRON_SAMPLE",
    lazy_subcommands={"serve": "diffutron_cli.serve_cmd:serve"},
)


def _replies(model, tokenizer, config, generator, prompts, *, chat: bool, show_steps: bool):
    """Trimmed replies to a list of prompts (one batch), the canvas animated if asked."""
    from contextlib import nullcontext

    from diffutron_sample import generate_texts

    live = LiveCanvas(tokenizer, config.max_new_tokens) if show_steps else None
    with live if live is not None else nullcontext():
        return generate_texts(
            model, tokenizer, prompts, config, chat=chat, generator=generator, callback=live
        )


def _prompt_rows(prompts: tuple[str, ...], prompts_file: str | None):
    """``(rows, problems)``: the ``--prompt`` texts (each checked) or the rows of
    ``--prompts-file`` (its malformed rows reported, one line each)."""
    from diffutron_common import check_text
    from diffutron_sample import PromptRow, SampleError, read_prompts

    if not prompts:
        found = read_prompts(cast(str, prompts_file))  # given when no --prompt is
        for problem in found.problems:
            click.echo(problem, err=True)
        return found.rows, found.problems
    for number, prompt in enumerate(prompts, 1):
        if not prompt.strip():
            raise SampleError(f"--prompt number {number} is empty; give some text")
        check_text(prompt, f"--prompt number {number}")
    return [PromptRow(0, {"prompt": p}, p) for p in prompts], []


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
    rows, problems = _prompt_rows(prompts, prompts_file)
    model, tokenizer, config, generator = load_for_sampling(kwargs)
    sink = atomic_write(output, option="--output") if output else nullcontext(None)
    with (
        sink as handle,
        click.progressbar(
            length=len(rows), label="generating", file=sys.stderr, hidden=not prompts_file
        ) as bar,
    ):
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]
            replies = _replies(
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
    if problems:
        click.echo(f"skipped {len(problems)} malformed row(s)", err=True)


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
    model, tokenizer, config, generator = load_for_sampling(kwargs)
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
    from contextlib import nullcontext

    from diffutron_common import check_text
    from diffutron_sample import infill_text

    check_text(text, "--text")
    model, tokenizer, config, generator = load_for_sampling(kwargs)
    if tokenizer.mask_token not in text:
        raise click.UsageError(f"--text holds no {tokenizer.mask_token}: mark what to fill with it")
    live = LiveCanvas(tokenizer) if kwargs["show_steps"] else None
    with live if live is not None else nullcontext():
        filled, _ = infill_text(model, tokenizer, text, config, generator=generator, callback=live)
    click.echo(filled)
