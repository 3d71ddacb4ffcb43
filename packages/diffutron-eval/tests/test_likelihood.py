import pytest
import torch

from diffutron_core import mc_loglikelihood, request_seed
from diffutron_eval import DiffutronLM


class Request:
    def __init__(self, *args):
        self.args = args


@pytest.fixture(scope="module")
def adapter(model_dir):
    return DiffutronLM(str(model_dir), mc_num=16, batch_size=8, device="cpu")


def test_no_continuation_token_is_lost_to_cls_sep(adapter, bert_tokenizer):
    context, continuation = "Bu cümlede ironi var mı?", " evet hayır"
    ctx_ids, cont_ids = adapter.encode_pair(context, continuation)
    assert cont_ids == bert_tokenizer(continuation, add_special_tokens=False)["input_ids"]
    assert len(cont_ids) >= 2 and bert_tokenizer.sep_token_id not in cont_ids
    assert ctx_ids == bert_tokenizer(context, add_special_tokens=False)["input_ids"]
    # The pitfall docs/evaluation.md#tokenising-context-and-continuation describes (dLLM's split)
    # drops the first token and keeps [SEP]:
    whole = bert_tokenizer(context + continuation)["input_ids"]
    naive = whole[len(bert_tokenizer(context)["input_ids"]) :]
    assert naive != cont_ids and naive[-1] == bert_tokenizer.sep_token_id
    assert adapter.prefix == [bert_tokenizer.cls_token_id]
    assert adapter.suffix == [bert_tokenizer.sep_token_id]


def test_trailing_context_whitespace_moves_to_the_continuation(adapter):
    assert adapter.encode_pair("Cevap: ", "evet") == adapter.encode_pair("Cevap:", " evet")


def logits_fn(adapter):
    prefix, suffix = torch.tensor(adapter.prefix), torch.tensor(adapter.suffix)

    def run(canvas):  # canvas: (N, C + L) without the special tokens
        n = canvas.shape[0]
        full = torch.cat([prefix.expand(n, -1), canvas, suffix.expand(n, -1)], dim=1)
        with torch.no_grad():
            logits = adapter.model(input_ids=full).logits
        return logits[:, len(prefix) : full.shape[1] - len(suffix)]

    return run


def test_loglikelihood_matches_the_core_estimator_draw_for_draw(adapter):
    requests = [
        Request("Türkiye'nin başkenti", " Ankara şehridir"),
        Request("Türkiye'nin başkenti", " İstanbul"),
        Request("Kedi", " uyuyor"),
    ]
    got = adapter.loglikelihood(requests, disable_tqdm=True)
    for request, (value, _) in zip(requests, got, strict=True):
        context, continuation = adapter.encode_pair(*request.args)
        generator = torch.Generator().manual_seed(request_seed(0, context, continuation))
        expected = mc_loglikelihood(
            logits_fn(adapter),
            context,
            continuation,
            mask_token_id=adapter.tokenizer.mask_token_id,
            mc_num=16,
            batch_size=16,  # one stratified set, as the adapter draws
            generator=generator,
        )
        assert value == pytest.approx(expected, rel=1e-4, abs=1e-4)


def test_one_token_continuations_are_exact_and_flag_greedy(adapter, bert_tokenizer):
    context = "Bu cümlede ironi var mı ?"
    words = [w for w in ("evet", "hayır", "bir", "ve") if len(adapter._ids(" " + w)) == 1]
    assert len(words) >= 2
    got = adapter.loglikelihood([Request(context, " " + w) for w in words], disable_tqdm=True)
    ctx = adapter._ids(context)
    ids = torch.tensor([adapter.prefix + ctx + [adapter.tokenizer.mask_token_id] + adapter.suffix])
    with torch.no_grad():
        logprobs = adapter.model(input_ids=ids).logits[0, len(ctx) + 1].float().log_softmax(-1)
    best = int(logprobs.argmax())
    for word, (value, greedy) in zip(words, got, strict=True):
        token = adapter._ids(" " + word)[0]
        assert value == pytest.approx(float(logprobs[token]), abs=1e-5)
        assert greedy == (token == best)


def test_batch_size_does_not_change_the_scores(model_dir):
    requests = [Request("Kedi bahçede", " uyuyor ve oynuyor"), Request("Kedi bahçede", " koşuyor")]
    scores = [
        DiffutronLM(str(model_dir), mc_num=12, batch_size=b).loglikelihood(
            requests, disable_tqdm=True
        )
        for b in (1, 5, 64)
    ]
    for other in scores[1:]:
        for (a, _), (b, _) in zip(scores[0], other, strict=True):
            assert a == pytest.approx(b, rel=1e-4, abs=1e-4)


def test_generate_until_takes_the_block_cache_from_model_args(model_dir, monkeypatch):
    import diffutron_sample.masked_lm as sample_model
    from diffutron_eval import EvalError

    calls = []
    real = sample_model.cached_states
    monkeypatch.setattr(
        sample_model, "cached_states", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    request = Request("Bugün hava", {"until": ["\n"], "max_gen_toks": 16})
    plain = DiffutronLM(str(model_dir), device="cpu").generate_until([request])
    assert calls == []
    cached = DiffutronLM(str(model_dir), device="cpu", cache="dual")
    assert cached.cache == "dual" and len(cached.generate_until([request])) == len(plain)
    assert calls
    with pytest.raises(EvalError, match="unknown cache 'full'"):
        DiffutronLM(str(model_dir), device="cpu", cache="full")


def test_generate_until_takes_the_commit_rule_and_refresh_from_model_args(model_dir, monkeypatch):
    from diffutron_eval import EvalError

    request = Request("Bugün hava", {"until": ["\n"], "max_gen_toks": 16})
    seen = []
    import diffutron_eval.lm as lm_module

    real = lm_module.generate_texts
    monkeypatch.setattr(
        lm_module, "generate_texts", lambda *a, **k: seen.append(a[3]) or real(*a, **k)
    )
    DiffutronLM(str(model_dir), device="cpu", cache="dual").generate_until([request])
    assert (seen[-1].cache, seen[-1].cache_refresh) == ("dual", "adaptive")
    assert not seen[-1].cache_delayed
    model = DiffutronLM(str(model_dir), device="cpu", cache="dual", cache_delayed="true")
    model.generate_until([request])
    assert (seen[-1].cache_refresh, seen[-1].cache_delayed) == ("adaptive", True)
    model = DiffutronLM(str(model_dir), device="cpu", entropy_bound="0.5", cache_drift="0")
    model.generate_until([request])
    assert (seen[-1].rule, seen[-1].entropy_bound, seen[-1].cache_drift) == (
        "entropy_bound",
        0.5,
        0.0,
    )
    assert seen[-1].threshold is None  # the asked rule replaced the model's default
    with pytest.raises(EvalError, match="margin_threshold must be"):
        DiffutronLM(str(model_dir), device="cpu", margin_threshold="2")
    with pytest.raises(EvalError, match="has no learned commit policy"):
        DiffutronLM(str(model_dir), device="cpu", policy="learned")
