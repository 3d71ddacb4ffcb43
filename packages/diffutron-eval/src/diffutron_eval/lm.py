"""The lm-eval model ``diffutron``: a Hugging Face masked diffusion LM under lm-eval.

    lm_eval --model diffutron --model_args pretrained=DIR,mc_num=32 --tasks diffutron_cetvel \\
        --include_path "$(diffutron-eval tasks-path)"

(``import diffutron_eval`` registers it; the ``diffutron-eval bench`` command does that for you.)

* ``loglikelihood``: the masked-diffusion bound (docs/evaluation.md#continuation-log-likelihood),
  exact for one-token continuations; a text with an empty context (a minimal pair) by TurBLiMP's
  within-word left-to-right pseudo-log-likelihood (``likelihood=auto``; ``pll``,
  ``pll-word-l2r`` or ``elbo`` score every request so: :mod:`diffutron_eval.pairs`). Context and
  continuation are tokenised separately, without special tokens, and their ids concatenated
  inside the tokenizer's own special tokens, so no continuation token is lost to a ``[CLS] ...
  [SEP]`` post-processor; lm-eval's rule is kept: trailing whitespace of the context moves to the
  front of the continuation. All choices of a question share batches.
* ``loglikelihood_rolling``: the same bound over windows of the whole text (empty context).
* ``generate_until``: diffutron-sample's sampler with the model's ``sampler_config.json``.

Under ``torchrun`` / ``accelerate launch`` each process takes ``rank`` and ``world_size`` from the
launcher, runs on its own device (``cuda:LOCAL_RANK``, or the CPU) and scores only its share of the
documents; lm-eval gathers the metrics on rank 0 through :meth:`DiffutronLM.gather_object`
(:mod:`diffutron_eval.distributed`). Every score is seeded by its request alone, so the shares
change no score.
"""

from __future__ import annotations

import logging
from typing import Any

import lm_eval.models  # noqa: F401  (the built-in models first: lm-eval registers them lazily)
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model

from diffutron_core import generator
from diffutron_eval import pairs
from diffutron_eval.distributed import all_gather, barrier, gather_object, start_processes
from diffutron_eval.errors import EvalError
from diffutron_eval.likelihood import Scored
from diffutron_eval.loading import load_masked_lm
from diffutron_sample import (
    Execution,
    MaskedLM,
    SampleError,
    SamplerConfig,
    find_commit_policy,
    generate_texts,
)
from diffutron_sample.policies import RULE_SETTINGS
from diffutron_sample.refresh import CACHE_SETTINGS, adaptive_by_default

logger = logging.getLogger(__name__)

SAMPLER_ARGS = (*RULE_SETTINGS, "dilation", *CACHE_SETTINGS[1:])
"""The sampler settings ``generate_until`` takes from the model arguments."""


def _generation_settings(unused: dict[str, Any], cache: str | None) -> tuple[dict[str, str], Any]:
    """``generate_until``'s commit rule and cache refresh, as text (docs/evaluation.md), taken
    out of the model arguments ``unused`` (the others left are warned about), and its block
    cache (``cache=prefix`` or ``dual``): checked before the (slow) model load."""
    sampler = {k: str(unused.pop(k)) for k in list(unused) if k in SAMPLER_ARGS}
    if unused:
        logger.warning("diffutron: ignoring model arguments %s", ", ".join(sorted(unused)))
    try:
        parsed = SamplerConfig.parse("cache", cache)
        if adaptive_by_default({**sampler, "cache": parsed}):
            sampler["cache_refresh"] = "adaptive"  # as --cache alone does
        SamplerConfig(cache=parsed).with_text(**sampler)
    except SampleError as exc:
        raise EvalError(f"diffutron: {exc}") from None
    return sampler, parsed


def _flag(value: Any) -> bool:
    return str(value).lower() in ("1", "true", "yes")


@register_model("diffutron")
class DiffutronLM(LM):
    """``pretrained``: a model dir or Hub id (safetensors only; ``trust_remote_code`` off unless
    asked). ``mc_num``: Monte-Carlo samples per multi-token continuation (dLLM: 128; 32 for BERT
    models). ``batch_size``: rows per forward pass. ``seed``: of the mask draws. ``cache``
    (``prefix`` or ``dual``): the block cache for ``generate_until`` (refreshed adaptively unless
    a refresh argument is given); ``compile``: the compiled step on CUDA
    (docs/sampling.md#block-cache). The :data:`SAMPLER_ARGS` (``threshold=0.9``,
    ``policy=learned``, ``cache_drift=0.05``, ``cache_delayed=true``, …) set ``generate_until``'s
    commit rule, dilation and cache refresh (docs/sampling.md#commit-policies). ``likelihood``:
    how ``loglikelihood`` scores (:mod:`diffutron_eval.pairs`); ``auto``, a text alone (an empty
    context: a minimal pair) by ``pll-word-l2r`` and after a context by ``elbo``."""

    def __init__(
        self,
        pretrained: str | None = None,
        *,
        model=None,
        tokenizer=None,
        mc_num: int = 32,
        batch_size: int | str = 32,
        max_length: int | None = None,
        seed: int = 0,
        device: str | None = None,
        dtype: str | None = None,
        trust_remote_code: bool | str = False,
        max_batch_size: int | None = None,
        cache: str | None = None,
        compile: bool | str = False,
        likelihood: str = "auto",
        **unused: Any,
    ) -> None:
        super().__init__()
        self.sampler, self.cache = _generation_settings(unused, cache)
        self.likelihood = likelihood if likelihood == "auto" else pairs.check_method(likelihood)
        processes = start_processes(device or None)
        self._rank, self._world_size = processes.rank, processes.world_size
        if model is None:
            model, tokenizer = load_masked_lm(
                pretrained, processes.device, dtype, trust_remote_code
            )
        if tokenizer is None or tokenizer.mask_token_id is None:
            raise EvalError(f"{pretrained or 'the model'}: the tokenizer has no mask token")
        self.model, self.tokenizer = model.eval(), tokenizer
        learned = self.sampler.get("policy") == "learned"
        try:
            policy = (
                find_commit_policy(pretrained, tokenizer, required=learned) if pretrained else None
            )
        except SampleError as exc:
            raise EvalError(f"diffutron: {exc}") from None
        self.lm = MaskedLM(model, execution=Execution(compile=_flag(compile)), commit_policy=policy)
        self._device = self.lm.device
        self.shard: dict[str, set[int]] = {}
        """The documents this process scored, by task (its share under a multi-process launch)."""
        self.pretrained = str(pretrained) if pretrained is not None else None
        self.mc_num = int(mc_num)
        self.batch_size = 32 if str(batch_size).startswith("auto") else int(batch_size)
        if self.mc_num < 1 or self.batch_size < 1:
            raise EvalError("diffutron: mc_num and batch_size must be at least 1")
        self.seed = int(seed)
        positions = getattr(model.config, "max_position_embeddings", None) or 512
        self.max_length = int(max_length) if max_length else positions
        self.affixes = pairs.Affixes.of(tokenizer)
        self.prefix, self.suffix = self.affixes.prefix, self.affixes.suffix
        self.pad_token_id = self.affixes.pad_token_id

    # -- tokenisation -------------------------------------------------------------------------

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"] if text else []

    def encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """``(context_ids, continuation_ids)`` tokenised apart, without special tokens, after
        moving the context's trailing whitespace to the continuation (lm-eval's rule); the
        context is cut from the left if the whole does not fit the model's positions."""
        spaces = len(context) - len(context.rstrip())
        if spaces:
            context, continuation = context[:-spaces], context[-spaces:] + continuation
        context_ids, continuation_ids = self._ids(context), self._ids(continuation)
        if not continuation_ids:
            raise EvalError(f"empty continuation for context {context[-40:]!r}")
        room = self.max_length - len(self.prefix) - len(self.suffix) - len(continuation_ids)
        if room < 0:
            raise EvalError(
                f"a continuation of {len(continuation_ids)} tokens does not fit the model's "
                f"{self.max_length} positions"
            )
        return context_ids[-room:] if room else [], continuation_ids

    def _words(self, context: str, continuation: str) -> list[int | None]:
        """The word of each continuation token (:meth:`encode_pair`'s split)."""
        spaces = len(context) - len(context.rstrip())
        return pairs.encode(self.tokenizer, context[len(context) - spaces :] + continuation).words

    def _score(self, items: list[tuple[list[int], list[int]]], args: list | None = None):
        """Each ``(context, continuation)``'s log-likelihood and greediness, by
        :attr:`likelihood` (``args``: the requests' texts; ``None`` for the bound)."""
        method = self.likelihood
        if method == "auto":
            method = "pll-word-l2r" if args is not None and not items[0][0] else "elbo"
        if method != "elbo" and args is not None:
            texts = [
                pairs.Text(c, self._words(*a), tuple(x))
                for (x, c), a in zip(items, args, strict=True)
            ]
            found = pairs.pll_greedy(
                self.lm, texts, self.affixes, method == "pll-word-l2r", self.batch_size
            )
            return [Scored(total, greedy) for total, greedy in found]
        return pairs.elbo_scored(
            self.lm, items, self.affixes, mc_num=self.mc_num, seed=self.seed,
            batch_size=self.batch_size,
        )  # fmt: skip

    # -- lm-eval's collectives, for a multi-process launch (diffutron_eval.distributed) --------

    def all_gather(self, tensor):
        return all_gather(tensor) if self.world_size > 1 else tensor

    def gather_object(self, obj, dst: int = 0):
        return gather_object(obj, dst) if self.world_size > 1 else [obj]

    def barrier(self) -> None:
        if self.world_size > 1:
            barrier()

    def _note(self, requests) -> None:
        """Record the documents of ``requests`` in :attr:`shard`."""
        for req in requests:
            task, doc = getattr(req, "task_name", None), getattr(req, "doc_id", None)
            if task is not None and doc is not None:
                self.shard.setdefault(task, set()).add(doc)

    # -- lm-eval API ----------------------------------------------------------------------------

    def loglikelihood(self, requests, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        from tqdm.auto import tqdm

        self._note(requests)
        items = [self.encode_pair(*req.args) for req in requests]
        # Requests of one question (same context) are adjacent: score them in one group.
        groups: dict[tuple[int, ...], list[int]] = {}
        for index, (context, _) in enumerate(items):
            groups.setdefault(tuple(context), []).append(index)
        results: list[tuple[float, bool] | None] = [None] * len(items)
        bar = tqdm(total=len(items), desc="loglikelihood", disable=disable_tqdm or self.rank != 0)
        for indices in groups.values():
            scored = self._score([items[i] for i in indices], [requests[i].args for i in indices])
            for i, s in zip(indices, scored, strict=True):
                results[i] = (s.loglikelihood, s.greedy)
                self.cache_hook.add_partial("loglikelihood", requests[i].args, results[i])
            bar.update(len(indices))
        bar.close()
        return results  # type: ignore[return-value]  # every entry was set in the loop above

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        self._note(requests)
        room = self.max_length - len(self.prefix) - len(self.suffix)
        out = []
        for req in requests:
            ids = self._ids(req.args[0])
            windows = [ids[i : i + room] for i in range(0, len(ids), room)] or []
            scored = self._score([([], w) for w in windows])
            out.append(sum(s.loglikelihood for s in scored))
            self.cache_hook.add_partial("loglikelihood_rolling", req.args, out[-1])
        return out

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        self._note(requests)
        defaults = (
            SamplerConfig.from_pretrained(self.pretrained) if self.pretrained else SamplerConfig()
        )
        out = []
        for req in requests:
            context, kwargs = req.args
            kwargs = dict(kwargs or {})
            until = kwargs.pop("until", None) or []
            until = [until] if isinstance(until, str) else list(until)
            new = int(kwargs.pop("max_gen_toks", defaults.max_new_tokens))
            block = min(defaults.block_length, new)
            new = -(-new // block) * block  # whole blocks
            config = defaults.replace(max_new_tokens=new, steps=new, block_length=block)
            if self.cache is not None:
                config = config.replace(cache=self.cache)
            if set(self.sampler) & set(RULE_SETTINGS):  # a rule asked for replaces the model's
                config = config.replace(**dict.fromkeys(RULE_SETTINGS))
            config = config.with_text(**self.sampler)
            if "temperature" in kwargs:
                config = config.replace(temperature=float(kwargs["temperature"]))
            (text,) = generate_texts(
                self.lm,
                self.tokenizer,
                [self.prefix + self._ids(context)],
                config,
                generator=generator(self.seed, self.lm.device),
            )
            for stop in until:
                if stop and stop in text:
                    text = text[: text.index(stop)]
            out.append(text)
            self.cache_hook.add_partial("generate_until", req.args, text)
        return out
