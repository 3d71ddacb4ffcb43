"""``diffutron demo``: the whole pipeline on the embedded default, offline, on a CPU.

Stages (each reused when its output exists, unless ``--force``):

1. CPT: the tiny preset, a 4-layer ModernBERT built from scratch with the embedded tokenizer, on
   the embedded corpus (``cpt/``, with ``loss.png``).
2. Perplexity on held-out embedded documents before CPT (the same model at initialisation) and
   after.
3. SFT: the embedded instructions plus three graded synthetic tasks (``sft/``).
4. Exact match of each task on held-out sentences with the reference sampler, beside its trivial
   baseline.
5. A few Turkish prompts answered (animated when the terminal is interactive).

Then a summary of every figure and artefact (``summary.md``, ``summary.json``).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path

import click

from diffutron_cli.options import FiniteFloat, friendly_errors
from diffutron_cli.stages import identity, stage, train_stage, write_json

PROMPTS = (
    ("", "Türkiye'nin başkenti neresidir?"),
    ("is_question", "Yarın okula gidecek misin?"),
    ("is_question", "Bugün hava çok güzel."),
    ("first_word", "Kitaplar insanın en iyi dostudur."),
)
"""What stage 5 asks: a free question, and rows of synthetic tasks (task, input)."""

DEMO_KIND = "demo"


def _cpt(out: Path, epochs: float | None, force: bool) -> dict:
    from diffutron_train import cpt_run, read_log, run_cpt

    loop = {"epochs": epochs} if epochs else {}

    def train(folder: Path, resume: bool):
        return run_cpt(cpt_run("tiny", loop=loop, output_dir=str(folder)), resume=resume)

    model = train_stage(out, "cpt", force, train)
    log = read_log(out / "cpt" / "log.jsonl")
    return {
        "model": str(model),
        "steps": log[-1]["step"],
        "first_loss": log[0]["loss"],
        "final_loss": log[-1]["loss"],
        "loss_png": str(out / "cpt" / "loss.png"),
    }


def _perplexity(out: Path) -> dict:
    import torch

    from diffutron_data import corpus_split, load_tokenizer
    from diffutron_eval import perplexity
    from diffutron_sample import load_model
    from diffutron_train import build_model, model_config

    texts = corpus_split()[1]
    tokenizer = load_tokenizer("tiny")
    before = build_model(model_config("tiny", vocab_size=len(tokenizer)), seed=0)  # CPT's start
    after, _ = load_model(str(out / "cpt" / "model"), device="cpu", dtype=torch.float32)
    first = perplexity(before.eval(), tokenizer, texts, max_length=256, mask_prob=0.15, seed=0)
    second = perplexity(after, tokenizer, texts, max_length=256, mask_prob=0.15, seed=0)
    return {
        "texts": len(texts),
        "masked_tokens": first.scored_tokens,
        "before": first.perplexity,
        "after": second.perplexity,
    }


def _sft(out: Path, epochs: float | None, force: bool) -> dict:
    from diffutron_train import read_log, run_sft, sft_run

    loop = {"epochs": epochs} if epochs else {}

    def train(folder: Path, resume: bool):
        run = sft_run(
            "tiny", 1, loop=loop, model=str(out / "cpt" / "model"), output_dir=str(folder)
        )
        return run_sft(run, resume=resume)

    model = train_stage(out, "sft", force, train)
    log = read_log(out / "sft" / "log.jsonl")
    return {
        "model": str(model),
        "steps": log[-1]["step"],
        "final_loss": log[-1]["loss"],
        "loss_png": str(out / "sft" / "loss.png"),
    }


def _prompt(task: str, text: str) -> str:
    """A prompt as the model was trained on it: a task's row in the Alpaca rule, or free text."""
    from diffutron_data import INSTRUCTIONS, row_to_messages

    if not task:
        return text
    row = {"instruction": INSTRUCTIONS[task], "input": text, "output": "-"}
    return row_to_messages(row, "alpaca")[0]["content"]


def _load(out: Path):
    """The SFT model, its tokenizer and its sampler settings (the reference sampler)."""
    import torch

    from diffutron_sample import SamplerConfig, load_model

    model_dir = out / "sft" / "model"
    model, tokenizer = load_model(str(model_dir), device="cpu", dtype=torch.float32)
    return model, tokenizer, SamplerConfig.from_pretrained(model_dir)


def _replies(model, tokenizer, config, prompts: list[str], callback=None) -> list[str]:
    """Chat replies to ``prompts`` (one batch), trimmed; seeded, so reruns agree."""
    from diffutron_core import generator
    from diffutron_sample import generate_texts

    return generate_texts(
        model, tokenizer, prompts, config, generator=generator(0), callback=callback
    )


def _tasks(out: Path, rows_per_task: int) -> dict:
    from diffutron_data import corpus_sentences, make_task_rows, sft_preset
    from diffutron_eval import score_task

    model, tokenizer, config = _load(out)
    held_out = corpus_sentences(heldout=True)
    results = {}
    for task in sft_preset("tiny").synthetic_tasks:  # the tasks the tiny preset trains on
        rows = make_task_rows(task, held_out, n=rows_per_task, seed=1)
        replies = _replies(model, tokenizer, config, [_prompt(task, r["input"]) for r in rows])
        results[task] = score = score_task(task, rows, replies)
        click.echo(
            f"  {task}: exact match {score['exact_match']:.0%} "
            f"(baseline {score['baseline_exact_match']:.0%}, {len(rows)} rows)"
        )
    return {"sampler": config.to_dict(), "tasks": results}


def _answer(out: Path, live: bool) -> dict:
    from diffutron_cli.live import LiveCanvas

    model, tokenizer, config = _load(out)
    answers = []
    for task, text in PROMPTS:
        prompt = _prompt(task, text)
        callback = LiveCanvas(tokenizer, config.max_new_tokens) if live else None
        with callback if callback is not None else contextlib.nullcontext():
            reply = _replies(model, tokenizer, config, [prompt], callback=callback)[0]
        answers.append({"prompt": prompt, "answer": reply})
        click.echo(f"  > {prompt.splitlines()[-1]}\n    {reply or '(empty)'}")
    return {"answers": answers}


def summary_markdown(out: Path, figures: dict, seconds: float) -> str:
    cpt, ppl, sft, tasks = (figures[k] for k in ("cpt", "perplexity", "sft", "tasks"))
    lines = [
        "# Diffutron demo",
        "",
        f"Wall time: {seconds:.0f} s for this invocation (stage times below include earlier runs).",
        "",
        "| stage | figure | value | artefact |",
        "|---|---|---|---|",
        f"| CPT ({cpt['seconds']:.0f} s) | masked-LM loss, {cpt['steps']} steps | "
        f"{cpt['first_loss']:.2f} → {cpt['final_loss']:.2f} | {cpt['loss_png']} |",
        f"| perplexity ({ppl['seconds']:.0f} s) | pseudo-perplexity, {ppl['texts']} held-out "
        f"documents, {ppl['masked_tokens']:,} masked tokens | before CPT {ppl['before']:.1f} → "
        f"after {ppl['after']:.1f} | perplexity.json |",
        f"| SFT ({sft['seconds']:.0f} s) | MDLM loss, {sft['steps']} steps | "
        f"{sft['final_loss']:.3f} | {sft['loss_png']} |",
    ]
    for task, r in tasks["tasks"].items():
        lines.append(
            f"| {r['kind']} ({task}) | exact match on {r['rows']} held-out sentences | "
            f"{r['exact_match']:.0%} (baseline, {r['baseline']}: {r['baseline_exact_match']:.0%}) "
            "| tasks.json |"
        )
    lines += [
        "",
        f"Models: {cpt['model']} (after CPT), {sft['model']} (after SFT; try "
        f"`diffutron-sample chat --model {sft['model']}`).",
        "",
        "The extraction and transformation tasks need more than CPU minutes: copying words and "
        "sentences out of the prompt is what a from-scratch 1.2M-parameter model learns last. "
        "More SFT steps (`diffutron-train sft --epochs`), a wider model or starting from "
        "mmBERT-base (the paper preset, GPU) are what it takes.",
    ]
    return "\n".join(lines) + "\n"


@click.command()
@click.option("--output-dir", default="runs/demo", show_default=True)
@click.option(
    "--force",
    is_flag=True,
    help="Redo every stage, even finished ones; each result is replaced once its new one is done.",
)
@click.option(
    "--live/--no-live",
    default=None,
    help="Animate the answers as they are unmasked [when the terminal is interactive].",
)
@click.option("--cpt-epochs", type=FiniteFloat(min=0, min_open=True), help="[preset: 60]")
@click.option("--sft-epochs", type=FiniteFloat(min=0, min_open=True), help="[preset: 35]")
@click.option(
    "--eval-rows",
    type=click.IntRange(min=2),
    default=60,
    show_default=True,
    help="Held-out rows per synthetic task.",
)
@friendly_errors
def demo(output_dir, force, live, cpt_epochs, sft_epochs, eval_rows):
    """Run the whole Diffutron pipeline on the embedded default: offline, on the CPU, in minutes.
    A tiny model is pre-trained, instruction-tuned and measured; the summary lists every figure.
    OUTPUT_DIR must be new, empty or an earlier demo's; a stage is reused only when it was made
    with the same settings, and --force redoes every stage, replacing each result only once its
    new one is complete (nothing is deleted first)."""
    import logging

    from diffutron_common import claim_folder, remove_stale_temps, write_text

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    out = claim_folder(output_dir, DEMO_KIND, option="--output-dir")
    remove_stale_temps(out)
    if live is None:
        live = sys.stdout.isatty()
    start = time.perf_counter()
    figures = {}
    figures["cpt"] = stage(
        1,
        "Continual pre-training on the embedded corpus",
        out / "cpt.json",
        force,
        {"cpt_epochs": cpt_epochs},
        lambda: _cpt(out, cpt_epochs, force),
    )
    figures["perplexity"] = stage(
        2,
        "Perplexity on held-out text, before and after CPT",
        out / "perplexity.json",
        force,
        {"cpt": identity(figures["cpt"])},
        lambda: _perplexity(out),
    )
    figures["sft"] = stage(
        3,
        "Instruction tuning (embedded instructions + synthetic tasks)",
        out / "sft.json",
        force,
        {"sft_epochs": sft_epochs, "cpt": identity(figures["cpt"])},
        lambda: _sft(out, sft_epochs, force),
    )
    figures["tasks"] = stage(
        4,
        "Synthetic tasks on held-out sentences (reference sampler)",
        out / "tasks.json",
        force,
        {"eval_rows": eval_rows, "sft": identity(figures["sft"])},
        lambda: _tasks(out, eval_rows),
    )
    click.secho("\n[5/5] A few Turkish prompts", bold=True)
    figures["answers"] = _answer(out, live)
    seconds = time.perf_counter() - start
    text = summary_markdown(out, figures, seconds)
    write_text(out / "summary.md", text)
    write_json(out / "summary.json", {**figures, "wall_seconds": round(seconds, 1)})
    click.echo("\n" + text)
    click.echo(f"summary: {out / 'summary.md'}")
