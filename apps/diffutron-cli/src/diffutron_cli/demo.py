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
import json
import os
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

import click

from diffutron_cli.options import friendly_errors

TASKS = {
    "is_question": ("classification", "the majority answer"),
    "first_word": ("extraction", "the most frequent first word"),
    "repeat": ("transformation", "an empty answer"),
}
PROMPTS = (
    "Türkiye'nin başkenti neresidir?",
    "Bu cümle bir soru mu? Evet ya da Hayır diye cevap ver.\n\nYarın okula gidecek misin?",
    "Bu cümle bir soru mu? Evet ya da Hayır diye cevap ver.\n\nBugün hava çok güzel.",
    "Bu cümlenin ilk kelimesini yaz.\n\nKitaplar insanın en iyi dostudur.",
)


def _write(path: Path, data: dict) -> dict:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return data


def _stage(number: int, title: str, path: Path, force: bool, work) -> dict:
    """Run ``work()`` (returning a JSON-able dict saved at ``path``) unless ``path`` exists."""
    click.secho(f"\n[{number}/5] {title}", bold=True)
    if path.is_file() and not force:
        click.echo(f"  reusing {path} (--force to redo)")
        return json.loads(path.read_text(encoding="utf-8"))
    start = time.perf_counter()
    result = work()
    result["seconds"] = round(time.perf_counter() - start, 1)
    return _write(path, result)


def _cpt(out: Path, epochs: float | None) -> dict:
    from diffutron_train.cpt import cpt_run, run_cpt
    from diffutron_train.loop import read_log

    loop = {"epochs": epochs} if epochs else {}
    run = cpt_run("tiny", loop=loop, output_dir=str(out / "cpt"))
    model = run_cpt(run)
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

    from diffutron_data import load_tokenizer
    from diffutron_data.embedded import corpus_split
    from diffutron_eval import perplexity
    from diffutron_sample import load_model
    from diffutron_train import build_model, model_config

    texts = corpus_split()[1]
    tokenizer = load_tokenizer("tiny")
    before = build_model(model_config("tiny", vocab_size=len(tokenizer)), seed=0)  # CPT's start
    after, _ = load_model(str(out / "cpt" / "model"), device="cpu", dtype=torch.float32)
    kwargs = {"max_length": 256, "mask_prob": 0.15, "seed": 0}
    first = perplexity(before.eval(), tokenizer, texts, **kwargs)
    second = perplexity(after, tokenizer, texts, **kwargs)
    return {
        "texts": len(texts),
        "masked_tokens": first.scored_tokens,
        "before": first.perplexity,
        "after": second.perplexity,
    }


def _sft(out: Path, epochs: float | None) -> dict:
    from diffutron_train.loop import read_log
    from diffutron_train.sft import run_sft, sft_run

    loop = {"epochs": epochs} if epochs else {}
    run = sft_run(
        "tiny", 1, loop=loop, model=str(out / "cpt" / "model"), output_dir=str(out / "sft")
    )
    model = run_sft(run)
    log = read_log(out / "sft" / "log.jsonl")
    return {
        "model": str(model),
        "steps": log[-1]["step"],
        "final_loss": log[-1]["loss"],
        "loss_png": str(out / "sft" / "loss.png"),
    }


def _baseline(task: str, rows: list[dict]) -> tuple[str, float]:
    """The trivial answer of ``task`` and its exact match on ``rows``."""
    majority = Counter(r["output"] for r in rows).most_common(1)[0][0]
    guess = "" if task == "repeat" else majority
    return guess, sum(r["output"] == guess for r in rows) / len(rows)


def _replies(model, tokenizer, config, prompts: list[str], callback=None) -> list[str]:
    """Chat replies to ``prompts`` (one batch), trimmed; seeded, so reruns agree."""
    import torch

    from diffutron_sample import batch_prompt_ids, decode_new, generate

    ids, mask = batch_prompt_ids(tokenizer, prompts)
    canvas = generate(
        model,
        ids,
        config,
        mask_token_id=tokenizer.mask_token_id,
        attention_mask=mask,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id or 0,
        generator=torch.Generator().manual_seed(0),
        callback=callback,
    )
    return [r.strip() for r in decode_new(tokenizer, canvas, config.max_new_tokens)]


def _tasks(out: Path, rows_per_task: int) -> dict:
    import torch

    from diffutron_data.embedded import corpus_sentences
    from diffutron_data.synthetic import make_task_rows
    from diffutron_sample import SamplerConfig, load_model

    model_dir = out / "sft" / "model"
    model, tokenizer = load_model(str(model_dir), device="cpu", dtype=torch.float32)
    config = SamplerConfig.from_pretrained(model_dir)  # the reference sampler (no threshold)
    held_out = corpus_sentences(heldout=True)
    results = {}
    for task, (kind, baseline_name) in TASKS.items():
        rows = make_task_rows(task, held_out, n=rows_per_task, seed=1)
        prompts = [f"{r['instruction']}\n\n{r['input']}" for r in rows]
        replies = _replies(model, tokenizer, config, prompts)
        exact = sum(a == r["output"] for a, r in zip(replies, rows, strict=True)) / len(rows)
        guess, base = _baseline(task, rows)
        results[task] = {
            "kind": kind,
            "rows": len(rows),
            "exact_match": exact,
            "baseline": baseline_name,
            "baseline_answer": guess,
            "baseline_exact_match": base,
            "examples": [
                {"input": r["input"], "expected": r["output"], "answer": a}
                for r, a in list(zip(rows, replies, strict=True))[:3]
            ],
        }
        click.echo(f"  {task}: exact match {exact:.0%} (baseline {base:.0%}, {len(rows)} rows)")
    return {"sampler": config.to_dict(), "tasks": results}


def _answer(out: Path, live: bool) -> dict:
    import torch

    from diffutron_sample import SamplerConfig, load_model

    model_dir = out / "sft" / "model"
    model, tokenizer = load_model(str(model_dir), device="cpu", dtype=torch.float32)
    config = SamplerConfig.from_pretrained(model_dir)
    answers = []
    for prompt in PROMPTS:
        callback = None
        if live:
            from diffutron_cli.sample import LiveCanvas

            callback = LiveCanvas(tokenizer, config.max_new_tokens)
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
@click.option("--force", is_flag=True, help="Redo every stage, even finished ones.")
@click.option(
    "--live/--no-live",
    default=None,
    help="Animate the answers as they are unmasked [when the terminal is interactive].",
)
@click.option("--cpt-epochs", type=click.FloatRange(min=0, min_open=True), help="[preset: 60]")
@click.option("--sft-epochs", type=click.FloatRange(min=0, min_open=True), help="[preset: 35]")
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
    A tiny model is pre-trained, instruction-tuned and measured; the summary lists every figure."""
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    out = Path(output_dir)
    if force and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    if live is None:
        live = sys.stdout.isatty()
    start = time.perf_counter()
    figures = {
        "cpt": _stage(
            1,
            "Continual pre-training on the embedded corpus",
            out / "cpt.json",
            force,
            lambda: _cpt(out, cpt_epochs),
        ),
        "perplexity": _stage(
            2,
            "Perplexity on held-out text, before and after CPT",
            out / "perplexity.json",
            force,
            lambda: _perplexity(out),
        ),
        "sft": _stage(
            3,
            "Instruction tuning (embedded instructions + synthetic tasks)",
            out / "sft.json",
            force,
            lambda: _sft(out, sft_epochs),
        ),
        "tasks": _stage(
            4,
            "Synthetic tasks on held-out sentences (reference sampler)",
            out / "tasks.json",
            force,
            lambda: _tasks(out, eval_rows),
        ),
    }
    click.secho("\n[5/5] A few Turkish prompts", bold=True)
    figures["answers"] = _answer(out, live)
    seconds = time.perf_counter() - start
    text = summary_markdown(out, figures, seconds)
    (out / "summary.md").write_text(text, encoding="utf-8")
    _write(out / "summary.json", {**figures, "wall_seconds": round(seconds, 1)})
    click.echo("\n" + text)
    click.echo(f"summary: {out / 'summary.md'}")
