"""Minimal-pair likelihoods: PLL and TurBLiMP's within-word left-to-right PLL against minicons (an
independent implementation), the MDLM bound against diffutron_core's estimator, batching."""

import csv

import pytest
import torch

from diffutron_core import mc_loglikelihood, request_seed, seeds
from diffutron_eval import pairs
from diffutron_eval.errors import EvalError
from diffutron_sample import MaskedLM


@pytest.fixture(scope="module")
def model(kit, bert_tokenizer):
    return kit.tiny_model(len(bert_tokenizer), seed=3)


def turblimp_sentences(folder, count: int) -> list[str]:
    """The good and bad sentences of the first pairs of each phenomenon file, ``count`` in all."""
    found: list[str] = []
    files = sorted(folder.glob("*.csv"))
    for row in range(count):
        path = files[row % len(files)]
        with path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle, delimiter=";"))
        found.append(rows[row // len(files)]["good_sentence" if row % 2 else "bad_sentence"])
    return found


@pytest.fixture(scope="module", params=["turblimp", "embedded"])
def sentences(request, kit):
    if request.param == "turblimp":
        return turblimp_sentences(request.getfixturevalue("turblimp_dir"), 60)
    return [s for s in kit.sentences() if 3 <= len(s.split()) <= 20][:60]


class Transformers4:
    """The tokenizer as minicons calls it: ``batch_encode_plus``, which transformers 5 folded
    into ``__call__`` (the only change; every other attribute is the tokenizer's own)."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def __getattr__(self, name):
        return getattr(self.tokenizer, name)

    def batch_encode_plus(self, *args, **kwargs):
        return self.tokenizer(*args, **kwargs)


@pytest.mark.parametrize(
    ("method", "metric"), [("pll", "original"), ("pll-word-l2r", "within_word_l2r")]
)
def test_pll_equals_minicons_sentence_scores(model, bert_tokenizer, sentences, method, metric):
    from minicons.scorer import MaskedLMScorer

    scorer = MaskedLMScorer(model, device="cpu", tokenizer=Transformers4(bert_tokenizer))
    theirs = []
    for start in range(0, len(sentences), 8):  # minicons pads each batch of sentences together
        theirs += scorer.sequence_score(
            sentences[start : start + 8], PLL_metric=metric, reduction=lambda x: x.sum(0).item()
        )
    ours = pairs.sentence_scores(model, bert_tokenizer, sentences, method=method, batch_size=48)
    assert len(sentences) >= 50
    assert ours == pytest.approx(theirs, abs=1e-4, rel=0)


def test_word_l2r_masks_the_rest_of_a_split_word(model, bert_tokenizer, sentences):
    texts = [pairs.encode(bert_tokenizer, s) for s in sentences]
    split = [t for t in texts if len(set(t.words)) < len(t.words)]  # a word of several pieces
    assert split, "the test tokenizer should split some Turkish words into pieces"
    affixes = pairs.Affixes.of(bert_tokenizer)
    mask, start = affixes.mask_token_id, len(affixes.prefix)
    for text in split[:10]:
        plain = pairs._copies(0, text, affixes, word_l2r=False)
        word = pairs._copies(0, text, affixes, word_l2r=True)
        pieces = zip(plain, word, strict=True)
        for i, ((_, ids, at, target), (_, l2r, at2, target2)) in enumerate(pieces):
            assert (at, target) == (at2, target2) == (start + i, text.ids[i])
            assert [j - start for j, t in enumerate(ids) if t == mask] == [i]
            later = [j for j in range(i + 1, len(text.ids)) if text.words[j] == text.words[i]]
            assert [j - start for j, t in enumerate(l2r) if t == mask] == [i, *later]
    whole = [s for s, t in zip(sentences, texts, strict=True) if len(set(t.words)) == len(t.words)]
    if whole:  # one piece a word: the two are the same
        plain = pairs.sentence_scores(model, bert_tokenizer, whole, method="pll")
        word = pairs.sentence_scores(model, bert_tokenizer, whole, method="pll-word-l2r")
        assert word == pytest.approx(plain, abs=1e-9)


def test_the_batch_size_changes_no_score_and_copies_share_passes(model, bert_tokenizer):
    texts = ["Kedi süt içer.", "Bugün hava çok güzel ve kediler bahçede.", "Ali okula gitti."]
    lm = MaskedLM(model)
    encoded = [pairs.encode(bert_tokenizer, t) for t in texts]
    affixes = pairs.Affixes.of(bert_tokenizer)
    one = pairs.pll(lm, encoded, affixes, batch_size=1)
    passes = lm.forward_passes
    many = pairs.pll(lm, encoded, affixes, batch_size=64)
    copies = sum(len(t.ids) for t in encoded)
    assert lm.forward_passes - passes == 1 and passes >= copies  # all copies in one pass
    assert many == pytest.approx(one, abs=1e-5)
    alone = [pairs.pll(lm, [t], affixes)[0] for t in encoded]
    assert many == pytest.approx(alone, abs=1e-5)


def test_elbo_is_deterministic_and_is_the_core_estimator(model, bert_tokenizer):
    texts = ["Kedi süt içer.", "Ali dün akşam okula gitti."]
    first = pairs.sentence_scores(model, bert_tokenizer, texts, method="elbo", mc_num=8, seed=5)
    again = pairs.sentence_scores(
        model, bert_tokenizer, texts, method="elbo", mc_num=8, seed=5, batch_size=3
    )
    assert first == pytest.approx(again, abs=1e-6)
    other = pairs.sentence_scores(model, bert_tokenizer, texts, method="elbo", mc_num=8, seed=6)
    assert other != pytest.approx(first, abs=1e-6)
    affixes = pairs.Affixes.of(bert_tokenizer)
    prefix, suffix = torch.tensor(affixes.prefix), torch.tensor(affixes.suffix)

    def logits(canvas):
        n = canvas.shape[0]
        full = torch.cat([prefix.expand(n, -1), canvas, suffix.expand(n, -1)], 1)
        out = model(input_ids=full, attention_mask=torch.ones_like(full)).logits
        return out[:, len(prefix) : full.shape[1] - len(suffix)]

    for text, score in zip(texts, first, strict=True):
        ids = bert_tokenizer(text, add_special_tokens=False)["input_ids"]
        generator = seeds.generator(request_seed(5, [], ids))
        core = mc_loglikelihood(
            logits,
            [],
            ids,
            mask_token_id=affixes.mask_token_id,
            mc_num=8,
            batch_size=8,
            generator=generator,
        )
        assert score == pytest.approx(core, abs=1e-4)


def test_pair_accuracy_counts_ties_as_lm_eval_does():
    assert pairs.pair_accuracy([-1.0, -2.0, -3.0], [-2.0, -1.0, -3.0]) == pytest.approx(2 / 3)
    with pytest.raises(EvalError):
        pairs.pair_accuracy([], [])


def test_an_unknown_method_is_one_line(model, bert_tokenizer):
    with pytest.raises(EvalError, match="unknown likelihood 'pppl'; choose one of pll"):
        pairs.sentence_scores(model, bert_tokenizer, ["Kedi."], method="pppl")
