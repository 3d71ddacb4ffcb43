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
import hashlib
import json
import os
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

import click

from diffutron_cli.options import FiniteFloat, friendly_errors

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


DEMO_KIND = "demo"


def _write(path: Path, data: dict) -> dict:
    from diffutron_common import write_text

    write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    return data


def _identity(result: dict) -> str:
    """A short hash of a stage's result: the stages after it are redone when it changes."""
    blob = json.dumps(result, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]


def _saved(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _stage(number: int, title: str, path: Path, force: bool, inputs: dict, work) -> dict:
    """Run ``work()`` (returning a JSON-able dict saved at ``path``) unless ``path`` holds the
    result of a run with the same ``inputs`` (settings, and the results of the stages it builds
    on): a stage is never reused for other settings."""
    click.secho(f"\n[{number}/5] {title}", bold=True)
    saved = _saved(path)
    if saved is not None and not force and saved.get("inputs") == inputs:
        click.echo(f"  reusing {path} (--force to redo)")
        return saved
    if saved is not None and not force:
        click.echo(f"  {path} was made with other settings; redoing this stage")
    start = time.perf_counter()
    result = work()
    result["seconds"] = round(time.perf_counter() - start, 1)
    result["inputs"] = inputs
    return _write(path, result)


def _train_stage(out: Path, name: str, force: bool, train) -> Path:
    """Run ``train(folder, resume)`` for the run folder ``out/name``: continued (or found
    finished) where an earlier demo left it; with ``force``, trained afresh in a folder beside
    it that replaces it only once training has succeeded."""
    from diffutron_common import PathError, replace_path
    from diffutron_common.files import temp_sibling

    final = out / name
    if not force:
        return Path(train(final, (final / "run.json").is_file()))
    fresh = temp_sibling(final)
    try:
        train(fresh, False)
        replace_path(fresh, final, "run", option=f"the demo's {name} folder")
    except BaseException:
        shutil.rmtree(fresh, ignore_errors=True)
        raise
    run_file = final / "run.json"  # it names the folder it was trained in
    try:
        settings = json.loads(run_file.read_text(encoding="utf-8"))
        settings["output_dir"] = str(final)
        _write(run_file, settings)
    except (OSError, ValueError, PathError):
        pass
    return final / "model"


def _cpt(out: Path, epochs: float | None, force: bool) -> dict:
    from diffutron_train import read_log
    from diffutron_train.cpt import cpt_run, run_cpt

    loop = {"epochs": epochs} if epochs else {}

    def train(folder: Path, resume: bool):
        return run_cpt(cpt_run("tiny", loop=loop, output_dir=str(folder)), resume=resume)

    model = _train_stage(out, "cpt", force, train)
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


def _sft(out: Path, epochs: float | None, force: bool) -> dict:
    from diffutron_train import read_log
    from diffutron_train.sft import run_sft, sft_run

    loop = {"epochs": epochs} if epochs else {}

    def train(folder: Path, resume: bool):
        run = sft_run(
            "tiny", 1, loop=loop, model=str(out / "cpt" / "model"), output_dir=str(folder)
        )
        return run_sft(run, resume=resume)

    model = _train_stage(out, "sft", force, train)
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
    figures["cpt"] = _stage(
        1,
        "Continual pre-training on the embedded corpus",
        out / "cpt.json",
        force,
        {"cpt_epochs": cpt_epochs},
        lambda: _cpt(out, cpt_epochs, force),
    )
    figures["perplexity"] = _stage(
        2,
        "Perplexity on held-out text, before and after CPT",
        out / "perplexity.json",
        force,
        {"cpt": _identity(figures["cpt"])},
        lambda: _perplexity(out),
    )
    figures["sft"] = _stage(
        3,
        "Instruction tuning (embedded instructions + synthetic tasks)",
        out / "sft.json",
        force,
        {"sft_epochs": sft_epochs, "cpt": _identity(figures["cpt"])},
        lambda: _sft(out, sft_epochs, force),
    )
    figures["tasks"] = _stage(
        4,
        "Synthetic tasks on held-out sentences (reference sampler)",
        out / "tasks.json",
        force,
        {"eval_rows": eval_rows, "sft": _identity(figures["sft"])},
        lambda: _tasks(out, eval_rows),
    )
    click.secho("\n[5/5] A few Turkish prompts", bold=True)
    figures["answers"] = _answer(out, live)
    seconds = time.perf_counter() - start
    text = summary_markdown(out, figures, seconds)
    write_text(out / "summary.md", text)
    _write(out / "summary.json", {**figures, "wall_seconds": round(seconds, 1)})
    click.echo("\n" + text)
    click.echo(f"summary: {out / 'summary.md'}")
