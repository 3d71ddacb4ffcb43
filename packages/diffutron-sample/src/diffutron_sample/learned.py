"""The learned commit policy (``policy="learned"``, docs/sampling.md#learned-policy): a classifier
of a few thousand parameters that reads a masked position's :data:`~diffutron_sample.traces.
FEATURES` and says whether its current proposal is already the token the reference sampler will
finally commit there. ``diffutron-train policy`` trains it on the model's own traces and writes it
into the model folder as ``commit_policy.safetensors`` and ``commit_policy.json``; the JSON names
the features, the cut-off, the tokenizer it was trained with and the weights file's digest, so a
missing, damaged or foreign policy is refused in one line."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from diffutron_common import atomic_path, write_text
from diffutron_sample.errors import SampleError
from diffutron_sample.traces import FEATURES

logger = logging.getLogger(__name__)

POLICY_WEIGHTS = "commit_policy.safetensors"
POLICY_CARD = "commit_policy.json"
POLICY_KIND = "diffutron-commit-policy"
FORMAT = 1
TRAIN_HINT = "train one with `diffutron-train policy --model DIR`"


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """A digest of the tokenizer's vocabulary and mask id: a policy's features mean nothing
    under another tokenizer."""
    vocabulary = sorted(tokenizer.get_vocab().items())
    text = json.dumps([vocabulary, tokenizer.mask_token_id], ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class CommitPolicy(torch.nn.Module):
    """``features -> P(final)``: standardised inputs, two hidden layers of ``hidden`` units
    (tanh), a logit; a position is accepted when ``P >= cutoff``."""

    def __init__(self, hidden: int = 32, cutoff: float = 0.5):
        super().__init__()
        width = len(FEATURES)
        self.net = torch.nn.Sequential(
            torch.nn.Linear(width, hidden),
            torch.nn.Tanh(),
            torch.nn.Linear(hidden, hidden),
            torch.nn.Tanh(),
            torch.nn.Linear(hidden, 1),
        )
        self.register_buffer("mean", torch.zeros(width))
        self.register_buffer("std", torch.ones(width))
        self.hidden, self.cutoff = hidden, cutoff

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``(M,)`` logits of "final" for ``(M, F)`` features."""
        mean, std = self.get_buffer("mean"), self.get_buffer("std")
        logits: torch.Tensor = self.net((features - mean) / std)
        return logits[:, 0]

    @torch.no_grad()
    def accepts(self, features: torch.Tensor) -> torch.Tensor:
        """``(M,)`` bool: the positions whose proposal the policy calls final (the policy moves
        to the features' device the first time they differ)."""
        mean = self.get_buffer("mean")
        if mean.device != features.device:
            self.to(features.device)
        return torch.sigmoid(self(features.to(mean.dtype))) >= self.cutoff

    def save(self, folder: str | Path, *, fingerprint: str, info: dict[str, Any]) -> None:
        """Write the card, then the weights it names (each atomic); an existing policy is
        replaced only when its card says it is one of ours."""
        folder = Path(folder)
        check_replaceable_policy(folder)
        weights = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        with atomic_path(folder / POLICY_WEIGHTS, option="--model") as tmp:
            save_file(weights, str(tmp))
            card = {
                "kind": POLICY_KIND,
                "format": FORMAT,
                "features": list(FEATURES),
                "hidden": self.hidden,
                "cutoff": self.cutoff,
                "tokenizer": fingerprint,
                "weights_sha256": hashlib.sha256(Path(tmp).read_bytes()).hexdigest(),
                **info,
            }  # the card lands first: an interrupted save leaves a policy known to be ours
            write_text(folder / POLICY_CARD, json.dumps(card, indent=2) + "\n", option="--model")

    @classmethod
    def load(cls, folder: str | Path, tokenizer: Any) -> CommitPolicy:
        """The policy in ``folder``, checked against ``tokenizer``; one :class:`SampleError`
        when it is missing, damaged or trained for another tokenizer."""
        folder = Path(folder)
        card_path, weights_path = folder / POLICY_CARD, folder / POLICY_WEIGHTS
        if not card_path.is_file() or not weights_path.is_file():
            raise SampleError(
                f"{folder} has no learned commit policy ({POLICY_CARD}); {TRAIN_HINT}"
            )
        card = _read_card(card_path)
        data = weights_path.read_bytes()
        if hashlib.sha256(data).hexdigest() != card.get("weights_sha256"):
            raise SampleError(
                f"{weights_path} is damaged (its digest is not the one {POLICY_CARD} records); "
                f"{TRAIN_HINT} again"
            )
        if card.get("tokenizer") != tokenizer_fingerprint(tokenizer):
            raise SampleError(
                f"the commit policy in {folder} was trained for another tokenizer; {TRAIN_HINT} "
                "for this model"
            )
        policy = cls(hidden=int(card["hidden"]), cutoff=float(card["cutoff"]))
        try:
            policy.load_state_dict(load_file(str(weights_path)))
        except Exception as exc:  # a file safetensors or the shapes refuse
            raise SampleError(f"{weights_path} is damaged ({exc}); {TRAIN_HINT} again") from None
        return policy.eval()


def find_commit_policy(
    name_or_path: str | Path, tokenizer: Any, *, required: bool
) -> CommitPolicy | None:
    """The learned commit policy of the model at ``name_or_path`` (a local folder): loaded and
    checked when the folder has one. When none is ``required``, a folder without one gives None,
    and so does one the checks refuse (the log says why); when one is, that is the error."""
    folder = Path(name_or_path)
    present = (folder / POLICY_CARD).is_file() or (folder / POLICY_WEIGHTS).is_file()
    if not required:
        if not present:
            return None
        try:
            return CommitPolicy.load(folder, tokenizer)
        except SampleError as exc:
            logger.warning("the learned commit policy is not loaded: %s", exc)
            return None
    if not folder.is_dir():
        raise SampleError(
            f"policy 'learned' reads the commit policy from a local model folder, and "
            f"{name_or_path} is not one; download the model and {TRAIN_HINT}"
        )
    return CommitPolicy.load(folder, tokenizer)


def _read_card(path: Path) -> dict[str, Any]:
    """The policy card, refused in one line unless it is ours, of this format and features."""
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SampleError(f"{path} is damaged ({exc}); {TRAIN_HINT} again") from None
    if not isinstance(card, dict) or card.get("kind") != POLICY_KIND:
        raise SampleError(f"{path} is not a Diffutron commit policy; {TRAIN_HINT}")
    cutoff, hidden = card.get("cutoff"), card.get("hidden")
    if (
        card.get("format") != FORMAT
        or card.get("features") != list(FEATURES)
        or not isinstance(hidden, int)
        or isinstance(hidden, bool)
        or not 1 <= hidden <= 4096
        or not isinstance(cutoff, (int, float))
        or not 0 < cutoff < 1
    ):
        raise SampleError(
            f"{path} was written for other features or another format, or is damaged; "
            f"{TRAIN_HINT} again"
        )
    return card


def check_replaceable_policy(folder: Path) -> None:
    """Refuse to write over a ``commit_policy`` file Diffutron did not make."""
    card, weights = folder / POLICY_CARD, folder / POLICY_WEIGHTS
    ours = read_marker_file(card)
    for path in (card, weights):
        if (path.exists() or path.is_symlink()) and not ours:
            raise SampleError(
                f"{path} exists and is not a commit policy Diffutron wrote; move it away first"
            )


def read_marker_file(path: Path) -> bool:
    """Whether ``path`` is a policy card Diffutron wrote."""
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(card, dict) and card.get("kind") == POLICY_KIND


__all__ = [
    "POLICY_CARD",
    "POLICY_WEIGHTS",
    "CommitPolicy",
    "find_commit_policy",
    "tokenizer_fingerprint",
]
