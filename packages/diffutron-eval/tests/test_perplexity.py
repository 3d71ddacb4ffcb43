import json
import math

import pytest

from diffutron_eval import EvalError, perplexity, read_texts


def test_perplexity_is_deterministic_for_a_seed_and_independent_of_the_batch(bert_tokenizer, kit):
    model = kit.tiny_model(len(bert_tokenizer))
    texts = kit.sentences(30)
    first = perplexity(model, bert_tokenizer, texts, seed=3, batch_size=4, max_length=128)
    again = perplexity(model, bert_tokenizer, texts, seed=3, batch_size=7, max_length=128)
    other = perplexity(model, bert_tokenizer, texts, seed=4, batch_size=4, max_length=128)
    assert first.perplexity == pytest.approx(again.perplexity, rel=1e-5)
    assert first.scored_tokens == again.scored_tokens
    assert first.perplexity != other.perplexity
    assert first.windows == 30 and first.method == "pseudo"
    # 15% of the real tokens, at least one per window
    real = sum(len(bert_tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)
    assert 30 <= first.scored_tokens < 0.3 * real


def test_a_model_trained_on_the_text_has_lower_perplexity_than_a_random_one(bert_tokenizer, kit):
    texts = kit.sentences(200)
    random_model = kit.tiny_model(len(bert_tokenizer), seed=1)
    before = perplexity(random_model, bert_tokenizer, texts[:60], seed=0, max_length=128)
    trained = kit.train_mlm(kit.tiny_model(len(bert_tokenizer), seed=1), bert_tokenizer, texts)
    after = perplexity(trained, bert_tokenizer, texts[:60], seed=0, max_length=128)
    assert after.perplexity < 0.5 * before.perplexity
    assert before.perplexity == pytest.approx(math.exp(before.mean_nll))
    bound = perplexity(trained, bert_tokenizer, texts[:60], seed=0, elbo=True, max_length=128)
    assert bound.method == "elbo" and bound.mask_prob is None
    assert math.isfinite(bound.perplexity) and bound.perplexity > 1


def test_long_texts_are_cut_into_windows_that_fit(bert_tokenizer, kit):
    model = kit.tiny_model(len(bert_tokenizer))
    long_text = " ".join(kit.sentences(40))
    result = perplexity(model, bert_tokenizer, [long_text], max_length=64)
    tokens = len(bert_tokenizer(long_text, add_special_tokens=False)["input_ids"])
    assert result.windows == math.ceil(tokens / 62)  # 64 minus [CLS] and [SEP]
    with pytest.raises(EvalError, match="exceeds the model's 256 positions"):
        perplexity(model, bert_tokenizer, [long_text], max_length=512)
    with pytest.raises(EvalError, match="mask-prob"):
        perplexity(model, bert_tokenizer, [long_text], mask_prob=0, max_length=128)


def test_texts_come_from_files_with_one_line_errors(tmp_path):
    (tmp_path / "a.txt").write_text("bir\n\niki\n", encoding="utf-8")
    (tmp_path / "b.jsonl").write_text(json.dumps({"text": "üç"}) + "\n", encoding="utf-8")
    (tmp_path / "c.csv").write_text("id,text\n1,dört\n", encoding="utf-8")
    files = [str(tmp_path / n) for n in ("a.txt", "b.jsonl", "c.csv")]
    assert read_texts(files) == ["bir", "iki", "üç", "dört"]
    with pytest.raises(EvalError, match="no column 'body' \\(found: text\\)"):
        read_texts([files[1]], column="body")
    with pytest.raises(EvalError, match="does not exist"):
        read_texts([str(tmp_path / "missing.txt")])
    (tmp_path / "empty.txt").write_text("\n \n", encoding="utf-8")
    with pytest.raises(EvalError, match="no text to evaluate"):
        read_texts([str(tmp_path / "empty.txt")])
    (tmp_path / "bad.jsonl").write_text("{oops\n", encoding="utf-8")
    with pytest.raises(EvalError, match=r"bad\.jsonl:1: not a JSON object"):
        read_texts([str(tmp_path / "bad.jsonl")])
