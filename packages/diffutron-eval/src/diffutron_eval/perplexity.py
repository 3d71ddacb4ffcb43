"""Masked-token pseudo-perplexity (the paper's measure) and the MDLM bound, for masked LMs.

Each text is tokenised without special tokens and cut into windows of at most ``max_length``
tokens, each wrapped in the tokenizer's own special tokens. Pseudo-perplexity masks every real token
of a window with probability ``mask_prob`` (at least one per window) and is the exponential of the
mean cross-entropy over all masked tokens. ``elbo`` instead draws ``t ~ U(0, 1]`` per window and
sample, masks with probability ``t`` and weighs the masked cross-entropy by ``1/t``, the MDLM bound
on the negative log-likelihood; its exponential per token bounds the true perplexity from above.
Every draw comes from a generator seeded by (seed, window, sample)
(:func:`diffutron_core.window_seed`), so results do not depend on the batch size or device, nor on
how many processes share the batches (``torchrun``: :func:`perplexity`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from diffutron_common import progress_enabled
from diffutron_core import pad_rows, seeds
from diffutron_eval.distributed import start_processes, sum_across
from diffutron_eval.errors import EvalError
from diffutron_sample import MaskedLM


@dataclass
class PerplexityResult:
    perplexity: float
    mean_nll: float
    """Nats per scored token: masked tokens (pseudo), or every token (bound)."""
    scored_tokens: int
    windows: int
    texts: int
    method: str
    max_length: int
    mask_prob: float | None
    seed: int
    processes: int = 1
    """How many processes shared the work (``torchrun --nproc_per_node``)."""
    shard: tuple[int, ...] = field(default=(), repr=False)
    """The ``(window, sample)`` jobs this process scored, by index (all of them in one
    process); not part of :meth:`to_dict`."""

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        del record["shard"]
        return record


def special_affixes(tokenizer) -> tuple[list[int], list[int]]:
    """The ids the tokenizer puts before and after a text (``[CLS]``/``[SEP]``, ``<bos>``/...)."""
    inner = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a")["input_ids"]
    for start in range(len(full) - len(inner) + 1):
        if full[start : start + len(inner)] == inner:
            return full[:start], full[start + len(inner) :]
    return [], []


def windows(tokenizer, texts: list[str], max_length: int) -> list[tuple[list[int], int, int]]:
    """``(ids, first, last)`` per window: the ids with special tokens, and the span of real tokens
    (``ids[first:last]``) that may be masked."""
    prefix, suffix = special_affixes(tokenizer)
    room = max_length - len(prefix) - len(suffix)
    if room < 1:
        raise EvalError(f"--max-length {max_length} leaves no room beside the special tokens")
    out = []
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        for start in range(0, len(ids), room):
            chunk = ids[start : start + room]
            out.append((prefix + chunk + suffix, len(prefix), len(prefix) + len(chunk)))
    return out


def _draw_masks(n_real: int, *, mask_prob: float | None, generator: torch.Generator):
    """(masked positions among the real tokens, weight): fixed-rate or MDLM-bound masking."""
    if mask_prob is not None:
        chosen = torch.rand(n_real, generator=generator) < mask_prob
        if not chosen.any():  # every window counts: mask one position
            chosen[torch.randint(n_real, (1,), generator=generator)] = True
        return chosen, 1.0
    t = 1.0 - torch.rand((), generator=generator).item()  # (0, 1]
    chosen = torch.rand(n_real, generator=generator) < t
    return chosen, 1.0 / t


def perplexity(
    model,
    tokenizer,
    texts: list[str],
    *,
    max_length: int = 512,
    mask_prob: float = 0.15,
    seed: int = 0,
    batch_size: int = 8,
    elbo: bool = False,
    elbo_samples: int = 4,
    progress: bool | None = None,
) -> PerplexityResult:
    """Pseudo-perplexity of ``model`` on ``texts`` (or, with ``elbo``, the MDLM bound).

    Under a multi-process launch (``torchrun``, ``accelerate launch``) process ``r`` of ``n``
    scores batches ``r, r + n, …`` and the per-job sums are added across processes, so every
    process returns the whole result, the same as one process's to the last bit."""

    _check_settings(model, tokenizer, texts, max_length=max_length, mask_prob=mask_prob)
    lm = MaskedLM(model)
    processes = start_processes(str(lm.device))
    items = windows(tokenizer, texts, max_length)
    samples = elbo_samples if elbo else 1
    rate = None if elbo else mask_prob  # the bound draws its own rate per sample
    jobs = [(w, k) for w in range(len(items)) for k in range(samples)]
    starts = range(0, len(jobs), batch_size)[processes.rank :: processes.world_size]
    mine = [j for s in starts for j in range(s, min(s + batch_size, len(jobs)))]
    nll = torch.zeros(len(jobs), dtype=torch.float64)  # each job's (weighted) masked CE
    counts = torch.zeros(len(jobs), dtype=torch.int64)  # each job's masked tokens
    bar = _progress_bar(len(mine), progress if processes.main else False)
    with torch.inference_mode():
        for start in starts:
            batch = jobs[start : start + batch_size]
            sums, masked = _batch_sums(
                lm, tokenizer, items, batch, seed=seed, samples=samples, mask_prob=rate
            )
            nll[start : start + len(batch)], counts[start : start + len(batch)] = sums, masked
            bar.update(len(batch))
    bar.close()
    total = sum_across(nll).sum().item()
    scored = int(sum_across(counts).sum())
    if elbo:
        scored = sum(last - first for _, first, last in items)  # the bound covers every token
    mean = total / max(scored, 1)
    return PerplexityResult(
        perplexity=math.exp(mean),
        mean_nll=mean,
        scored_tokens=scored,
        windows=len(items),
        texts=len(texts),
        method="elbo" if elbo else "pseudo",
        max_length=max_length,
        mask_prob=rate,
        seed=seed,
        processes=processes.world_size,
        shard=tuple(mine),
    )


def _batch_sums(
    lm, tokenizer, items, batch, *, seed: int, samples: int, mask_prob: float | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward pass over a batch of ``(window, sample)`` jobs: each job's cross-entropy
    summed over its masked tokens (times ``1/t`` and over ``samples`` for the bound), float64,
    and each job's count of masked tokens."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids, attention, masked, weights = _masked_batch(
        items, batch, pad_token_id=pad, seed=seed, samples=samples, mask_prob=mask_prob
    )
    nll, rows = _masked_nll(lm, ids, attention, masked, tokenizer.mask_token_id)
    sums = torch.zeros(len(batch), dtype=torch.float64).index_add_(0, rows, nll)
    if mask_prob is None:  # the bound: weigh by 1/t, average over the samples
        sums = sums * weights.double() / samples
    return sums, torch.bincount(rows, minlength=len(batch))


def _check_settings(model, tokenizer, texts: list[str], *, max_length: int, mask_prob: float):
    """Refuse, in one line, what :func:`perplexity` cannot evaluate."""
    if not texts:
        raise EvalError("no text to evaluate")
    if not 0 < mask_prob < 1:
        raise EvalError(f"--mask-prob must be in (0, 1), got {mask_prob}")
    if tokenizer.mask_token_id is None:
        raise EvalError("the tokenizer has no mask token: this is not a masked LM")
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit is not None and max_length > limit:
        raise EvalError(f"--max-length {max_length} exceeds the model's {limit} positions")


def _progress_bar(total: int, progress: bool | None):
    """A tqdm bar over ``total`` jobs, shown when ``progress`` (default: the project's setting)."""
    if progress is None:
        progress = progress_enabled()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="perplexity", unit="window", disable=not progress)


def _masked_batch(
    items: list[tuple[list[int], int, int]],
    batch: list[tuple[int, int]],
    *,
    pad_token_id: int,
    seed: int,
    samples: int,
    mask_prob: float | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(ids, attention, masked, weights)`` for a batch of ``(window, sample)`` jobs: the windows
    right-padded (:func:`~diffutron_core.pad_rows`), the real tokens each job masks
    (:func:`_draw_masks`, from its own :func:`~diffutron_core.window_seed` generator) and each
    row's weight."""
    ids, attention = pad_rows([items[w][0] for w, _ in batch], pad_token_id)
    masked = torch.zeros(ids.shape, dtype=torch.bool)
    weights = torch.ones(len(batch))
    for row, (w, k) in enumerate(batch):
        _, first, last = items[w]
        generator = seeds.generator(seeds.window_seed(seed, w, k, samples))
        chosen, weights[row] = _draw_masks(last - first, mask_prob=mask_prob, generator=generator)
        masked[row, first:last] = chosen
    return ids, attention, masked, weights


def _masked_nll(
    lm, ids: torch.Tensor, attention: torch.Tensor, masked: torch.Tensor, mask_token_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward pass with the ``masked`` tokens hidden: the cross-entropy of each masked token
    (float64, CPU, row-major order) and the batch row it belongs to."""
    targets = ids[masked]
    noisy = ids.masked_fill(masked, mask_token_id).to(lm.device)
    rows = masked.nonzero(as_tuple=True)
    where = (rows[0].to(lm.device), rows[1].to(lm.device))
    logits = lm.logits_at(noisy, attention.to(lm.device), None, where)
    nll = F.cross_entropy(logits, targets.to(lm.device), reduction="none").cpu().double()
    return nll, rows[0]
