"""One denoising step's proposals: what each still-masked position would become, and how sure.

The backbone runs over the whole canvas (twice the batch with classifier-free guidance), the
output layer only at the candidate positions (docs/sampling.md#logits-only-where-they-are-read).
The logits then get guidance and dLLM's repetition penalty, a token is drawn by Gumbel-max, and
its confidence is read from the full softmax (docs/sampling.md#one-step). Which proposals are
committed is the runner's business (:mod:`diffutron_sample.runner`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import torch

from diffutron_sample.cache import Span
from diffutron_sample.config import SamplerConfig
from diffutron_sample.masked_lm import MaskedLM, Where
from diffutron_sample.penalty import penalize_canvas_ids
from diffutron_sample.rowvalues import row_values
from diffutron_sample.vocabulary import draw, logsumexp_into


@dataclass
class Batch:
    """One forward pass's rows: the canvases left-padded to one width, with what each row's
    settings need. ``attention`` marks real positions, ``given`` the tokens guidance hides,
    ``candidates`` the positions to propose for; ``never`` holds each row's ids that may not be
    proposed (the mask, and pad in infilling), ``generators`` each row's generator."""

    canvas: torch.Tensor
    attention: torch.Tensor
    given: torch.Tensor
    candidates: torch.Tensor
    configs: list[SamplerConfig]
    never: list[tuple[int, ...]]
    generators: list[torch.Generator | None]
    spans: list[Span] | None = None
    """With the block cache: what each row computes (docs/sampling.md#block-cache)."""
    uncond_spans: list[Span | None] | None = None
    """With the cache and guidance: each guided row's span of its unconditional copy."""
    entries: list[int] | None = None
    """How many candidates each row has, when the caller knows (the scheduler does): the
    draws then find each row's entries without reading the device."""
    positions: torch.Tensor = field(init=False)

    def __post_init__(self) -> None:
        self.positions = (self.attention.long().cumsum(1) - 1).clamp(min=0)


def _guided(lm: MaskedLM, batch: Batch, where: Where, mask_token_id: int) -> torch.Tensor:
    """``(M, V)`` logits at ``where``; rows with ``cfg_scale > 0`` get classifier-free guidance
    ``un + (w + 1)(cond - un)``, their unconditional copy (given tokens masked) in the same pass."""
    device = batch.canvas.device
    rows = [row for row, c in enumerate(batch.configs) if c.cfg_scale > 0]  # host: no read
    if not rows:
        return lm.logits_at(batch.canvas, batch.attention, batch.positions, where, batch.spans)
    guided = torch.tensor(rows, dtype=torch.long, device=device)
    uncond = batch.canvas[guided].masked_fill(batch.given[guided], mask_token_id)
    spans: list[Span] | None = None
    if batch.spans is not None and batch.uncond_spans is not None:
        copied = [batch.uncond_spans[row] for row in rows]  # every guided row has its copy's
        spans = batch.spans + cast(list[Span], copied)
    scales = torch.tensor([c.cfg_scale for c in batch.configs], dtype=torch.float64, device=device)
    slot = torch.full_like(scales, -1, dtype=torch.long)
    slot[guided] = torch.arange(len(rows), device=device)
    picked = (slot[where[0]] >= 0).nonzero(as_tuple=True)[0]  # entries of guided rows
    copies = (slot[where[0][picked]], where[1][picked])  # their places in the copies
    ids = torch.cat([batch.canvas, uncond])
    attention = torch.cat([batch.attention, batch.attention[guided]])
    positions = torch.cat([batch.positions, batch.positions[guided]])
    half = len(batch.canvas)
    if lm.restrict_head:  # one backbone pass, the output layer at each half's positions
        states = lm.hidden_states(ids, attention, positions, spans)
        logits, un = lm.head_logits(states[:half], where), lm.head_logits(states[half:], copies)
    else:
        both = (torch.cat([where[0], half + copies[0]]), torch.cat([where[1], copies[1]]))
        full = lm.logits_at(ids, attention, positions, both, spans)
        logits, un = full[: len(where[0])], full[len(where[0]) :]
    scale = (scales[where[0][picked]] + 1)[:, None].to(logits.dtype)
    logits[picked] = un + scale * (logits[picked] - un)
    return logits


def batch_logits(
    lm: MaskedLM, batch: Batch, where: Where, *, mask_token_id: int, eos_token_id: int | None
) -> torch.Tensor:
    """``(M, V)`` logits at the ``(row, position)`` pairs ``where``, with each row's guidance and
    repetition penalty."""
    logits = _guided(lm, batch, where, mask_token_id)
    penalties = [c.repetition_penalty for c in batch.configs]
    if any(p != 1.0 for p in penalties):
        use = batch.attention & (batch.canvas != mask_token_id)
        if eos_token_id is not None:
            use &= batch.canvas != eos_token_id
        values = row_values(penalties, logits.dtype, logits.device)  # shared: read only
        # a row whose penalty is 1.0 is unchanged (x / 1 and x * 1 are exact)
        penalize_canvas_ids(
            logits,
            where[0],
            batch.canvas,
            use,
            values.index_select(0, where[0])[:, None],
            spare_id=mask_token_id,
        )
    return logits


def _draw_groups(batch: Batch) -> list[list[int]]:
    """The rows whose random draws are made together: rows sharing one generator and the same
    temperature, remasking and forbidden ids draw in one call, in row order (a whole
    :func:`~diffutron_sample.generate` batch, as before the engine); a row with a generator of
    its own draws alone, exactly as it would alone. Greedy rows ranked by confidence draw
    nothing, so their generators do not part them: the server's greedy requests, each with a
    generator of its own, make one group."""
    groups: dict[tuple[int, float, str, tuple[int, ...]], list[int]] = {}
    for row, (config, never, generator) in enumerate(
        zip(batch.configs, batch.never, batch.generators, strict=True)
    ):
        random = config.temperature > 0 or config.remasking == "random"
        key = (id(generator) if random else 0, config.temperature, config.remasking, never)
        groups.setdefault(key, []).append(row)
    return list(groups.values())


def _entry_starts(batch: Batch) -> list[int] | None:
    """Where each row's candidate entries start (in ``rows`` order), from the host's counts."""
    if batch.entries is None:
        return None
    starts = [0]
    for count in batch.entries:
        starts.append(starts[-1] + count)
    return starts


def _entries_of(
    starts: list[int] | None, rows: torch.Tensor, group: list[int]
) -> torch.Tensor | slice:
    """The candidate entries (in ``rows`` order) of the rows of ``group``: a slice, from the
    host's ``starts``, when the group's rows are consecutive; else found on the device."""
    if starts is not None:
        if group == list(range(group[0], group[-1] + 1)):
            return slice(starts[group[0]], starts[group[-1] + 1])
        spans = [torch.arange(starts[r], starts[r + 1]) for r in group]
        return torch.cat(spans).to(rows.device)
    return torch.isin(rows, torch.tensor(group, device=rows.device)).nonzero(as_tuple=True)[0]


@dataclass
class Entries:
    """What a pass proposed beyond its scores, filled in by :func:`propose`: the candidate
    entries (``rows``, ``cols``, row major) and their proposed ``tokens``, and the ``measures``
    the commit rules asked for, one value per entry: ``margin`` (the two most probable tokens'
    gap), ``entropy``, ``logprobs`` ``(M, V)`` (the log-softmax, for KLASS)."""

    rows: torch.Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.long))
    cols: torch.Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.long))
    tokens: torch.Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.long))
    measures: dict[str, torch.Tensor] = field(default_factory=dict)


def _measure(logits: torch.Tensor, wanted: frozenset[str]) -> dict[str, torch.Tensor]:
    """What ``wanted`` names, read from ``logits`` before they are spent: the two largest
    logits (``top2``), the log-softmax and the entropy."""
    found: dict[str, torch.Tensor] = {}
    if "margin" in wanted:
        found["top2"] = logits.topk(min(2, logits.shape[1]), dim=1).values
    if wanted & {"entropy", "logprobs"}:
        logprobs = torch.log_softmax(logits, dim=1)
        found["entropy"] = torch.special.entr(logprobs.exp()).sum(dim=1)
        if "logprobs" in wanted:
            found["logprobs"] = logprobs
    return found


_Randoms = list[tuple[torch.Tensor | slice, torch.Tensor]]


def _draw_all(
    batch: Batch, logits: torch.Tensor, rows: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, _Randoms]:
    """Every candidate's token and its logit's peak, drawn group by group (rows that share a
    sampling setting), and the random scores of the ``remasking="random"`` groups."""
    groups = _draw_groups(batch)
    if len(groups) == 1 and len(rows):  # one group (the common case): its draw is the whole
        config, generator = batch.configs[0], batch.generators[0]
        x0, peak = draw(logits, batch.never[0], config, generator)
        return x0, peak, _random_scores(config, generator, slice(None), len(rows), x0.device)
    x0 = torch.zeros(len(rows), dtype=torch.long, device=logits.device)
    peak = torch.empty(len(rows), dtype=logits.dtype, device=logits.device)
    randoms: _Randoms = []
    starts = _entry_starts(batch)  # once per step, not once per group
    for group in groups:
        mine = _entries_of(starts, rows, group)
        own = logits[mine]
        if len(own) == 0:
            continue
        config, generator = batch.configs[group[0]], batch.generators[group[0]]
        x0[mine], peak[mine] = draw(own, batch.never[group[0]], config, generator)
        randoms += _random_scores(config, generator, mine, len(own), own.device)
    return x0, peak, randoms


def _random_scores(
    config: SamplerConfig,
    generator: torch.Generator | None,
    mine: torch.Tensor | slice,
    count: int,
    device: torch.device,
) -> _Randoms:
    """A ``remasking="random"`` group's scores, drawn after its tokens from the same generator;
    none for a group ranked by confidence."""
    if config.remasking != "random":
        return []
    drawn = torch.rand((count,), generator=generator, device=device, dtype=torch.float64)
    return [(mine, drawn)]


def propose(
    lm: MaskedLM,
    batch: Batch,
    *,
    mask_token_id: int,
    eos_token_id: int | None,
    measure: frozenset[str] = frozenset(),
    entries: Entries | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One forward pass: ``(scores, tokens, finite)``, the first two ``(B, W)`` like
    ``batch.candidates``: each candidate's proposed token ``x0`` (after guidance and the
    repetition penalty, drawn with its row's temperature and generator; never one of the row's
    ``never`` ids) and its confidence, ``-inf`` where nothing may be chosen; ``finite`` ``(B,)``
    is False for a row whose logits are not finite. ``entries`` receives the candidates and the
    ``measure`` s the commit rules read (``margin``, ``entropy``, ``logprobs``).

    The confidence is the chosen token's probability under the full softmax,
    ``exp(logit[x0] - logsumexp)``, in float32 on the candidates only (never a ``(B, L, V)``
    float64 softmax), or a uniform random score for ``remasking="random"``
    (docs/sampling.md#confidence-and-remasking); float64 for ranking. It stays that of the full
    softmax, so whenever the reference would not choose a forbidden id, the choice and the
    ranking are exactly the reference's."""
    rows, cols = batch.candidates.nonzero(as_tuple=True)
    logits = batch_logits(
        lm, batch, (rows, cols), mask_token_id=mask_token_id, eos_token_id=eos_token_id
    )
    x0, peak, randoms = _draw_all(batch, logits, rows)
    chosen_logits = logits.gather(1, x0[:, None])[:, 0]
    measures = _measure(logits, measure) if measure else {}
    lse = logsumexp_into(logits, peak)  # the logits are spent: every confidence, and finiteness
    confidence = (chosen_logits - lse).exp().double()
    if "top2" in measures:
        top = (measures.pop("top2") - lse[:, None]).exp()
        measures["margin"] = top[:, 0] - (top[:, 1] if top.shape[1] > 1 else 0)
    for mine, scores in randoms:
        confidence[mine] = scores
    scores = torch.full(
        batch.candidates.shape, float("-inf"), dtype=torch.float64, device=logits.device
    )
    scores[rows, cols] = confidence
    chosen = torch.zeros_like(batch.candidates, dtype=torch.long)
    chosen[rows, cols] = x0
    bad = torch.zeros(len(batch.canvas), dtype=torch.long, device=logits.device)
    bad.index_add_(0, rows, (~torch.isfinite(lse)).long())
    if entries is not None:
        entries.rows, entries.cols, entries.tokens, entries.measures = rows, cols, x0, measures
    return scores, chosen, bad == 0
