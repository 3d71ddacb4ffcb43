"""From a pass's proposals to what each row's commit rule accepts
(docs/sampling.md#commit-policies): the host's per-row settings made into device tensors, the
rules that read more than the confidence (entropy bound, margin, KLASS, the learned policy), the
requests' traces, and the features handed to a tracer (``diffutron-train policy`` records
them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch

from diffutron_sample.commits import entropy_accepts
from diffutron_sample.proposals import Entries
from diffutron_sample.rowvalues import row_values
from diffutron_sample.scheduler import Request
from diffutron_sample.traces import Trace, features

Tracer = Callable[[list[Request], torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], None]
"""``tracer(requests, rows, columns, features, tokens)``: each candidate's row (into
``requests``), column of its own canvas, features and proposed token, after every pass."""

MEASURES = {
    "entropy_bound": {"entropy"},
    "margin_threshold": {"margin"},
    "kl_threshold": {"logprobs"},
    "learned": {"margin", "entropy"},
}


def measures_for(requests: list[Request], tracing: bool) -> frozenset[str]:
    """What the rows' rules (and a tracer) read beyond the confidence."""
    wanted: set[str] = {"margin", "entropy"} if tracing else set()
    for request in requests:
        wanted |= MEASURES.get(request.config.rule or "", set())
    return frozenset(wanted)


class Decision(NamedTuple):
    """Per row ``thresholds`` (NaN: the schedule's count; ``+inf``: a rule other than the
    confidence's) and the positions the rules ``accepted`` (None: none beyond the threshold)."""

    thresholds: torch.Tensor
    accepted: torch.Tensor | None


def _per_row(
    requests: list[Request], value: Callable[[Request], float], device: Any
) -> torch.Tensor:
    return row_values([value(r) for r in requests], torch.float64, device)  # shared: read only


def _threshold(request: Request) -> float:
    """The confidence bound of the threshold rule; NaN: the schedule; +inf: another rule."""
    rule, threshold = request.config.rule, request.config.threshold
    if rule is None:
        return float("nan")
    return float(threshold) if rule == "threshold" and threshold is not None else float("inf")


def _setting(name: str) -> Callable[[Request], float]:
    def read(request: Request) -> float:
        if request.config.rule != name:
            return float("nan")
        return float(getattr(request.config, name))

    return read


def decide(
    requests: list[Request],
    scores: torch.Tensor,
    proposal: Entries,
    offsets: list[int],
    *,
    policy: Any = None,
    tracer: Tracer | None = None,
) -> Decision:
    """What each row's rule accepts in this pass; ``offsets`` are the rows' left padding."""
    device = scores.device
    rules = [r.config.rule for r in requests]
    thresholds = _per_row(requests, _threshold, device)
    if all(rule in (None, "threshold") for rule in rules) and tracer is None:
        return Decision(thresholds, None)
    accepted = torch.zeros_like(scores, dtype=torch.bool)
    measures, rows = proposal.measures, proposal.rows
    if "entropy_bound" in rules:
        entropy = torch.zeros_like(scores)
        entropy[proposal.rows, proposal.cols] = measures["entropy"].double()
        accepted |= entropy_accepts(
            scores, entropy, _per_row(requests, _setting("entropy_bound"), device)
        )
    ok = torch.zeros(len(rows), dtype=torch.bool, device=device)
    if "margin_threshold" in rules:
        ok |= measures["margin"] >= _per_row(requests, _setting("margin_threshold"), device)[rows]
    traced = [
        b
        for b, r in enumerate(requests)
        if tracer is not None or r.config.rule in ("kl_threshold", "learned")
    ]
    if traced:
        ok |= _traced(requests, scores, proposal, offsets, traced, policy, tracer)
    accepted[proposal.rows, proposal.cols] |= ok
    return Decision(thresholds, accepted)


def _starts(requests: list[Request]) -> list[int]:
    starts = [0]
    for request in requests:
        starts.append(starts[-1] + request.remaining[request.block])
    return starts


def _traced(
    requests: list[Request],
    scores: torch.Tensor,
    proposal: Entries,
    offsets: list[int],
    traced: list[int],
    policy: Any,
    tracer: Tracer | None,
) -> torch.Tensor:
    """Follow the traced rows' proposals; what KLASS and the learned policy accept."""
    rows, device = proposal.rows, scores.device
    count = len(rows)
    unchanged = torch.zeros(count, dtype=torch.long, device=device)
    divergence = torch.full((count,), float("nan"), dtype=torch.float64, device=device)
    columns = proposal.cols - torch.tensor(offsets, device=device)[rows]
    starts = _starts(requests)
    for b in traced:
        request, part = requests[b], slice(starts[b], starts[b + 1])
        if request.trace is None:
            request.trace = Trace.empty(request.length, device)
        unchanged[part] = request.trace.follow(columns[part], proposal.tokens[part])
        if request.config.rule == "kl_threshold":
            first, end = request.blocks[request.block]
            divergence[part] = request.trace.divergence(
                request.block,
                first,
                end - first,
                columns[part],
                proposal.measures["logprobs"][part],
            ).double()
    ok = divergence < _per_row(requests, _setting("kl_threshold"), device)[rows]
    learning = [r.config.rule == "learned" for r in requests]
    if tracer is None and not any(learning):
        return ok
    found = _features(requests, scores, proposal, columns, unchanged)
    if tracer is not None:
        tracer(requests, rows, columns, found, proposal.tokens)
    if any(learning):
        learned = torch.tensor(learning, device=device)[rows]
        accepts: torch.Tensor = policy.accepts(found)
        ok |= learned & accepts
    return ok


def _features(
    requests: list[Request],
    scores: torch.Tensor,
    proposal: Entries,
    columns: torch.Tensor,
    unchanged: torch.Tensor,
) -> torch.Tensor:
    """Every candidate's :data:`~diffutron_sample.traces.FEATURES`."""
    rows, device = proposal.rows, scores.device
    first = torch.tensor([r.blocks[r.block][0] for r in requests], device=device)[rows]
    width = torch.tensor(
        [r.blocks[r.block][1] - r.blocks[r.block][0] for r in requests], device=device
    )[rows]
    filled = _per_row(
        requests,
        lambda r: 1 - r.remaining[r.block] / (r.blocks[r.block][1] - r.blocks[r.block][0]),
        device,
    )[rows]
    position = (columns - first).double() / (width - 1).clamp(min=1)
    confidence = scores[proposal.rows, proposal.cols]
    measures = proposal.measures
    return features(
        confidence, measures["margin"], measures["entropy"], filled, position, unchanged
    )
