import json
from pathlib import Path

import pytest

from diffutron_eval import DiffutronLM, EvalError
from diffutron_eval.bench import run_bench

FIXTURES = Path(__file__).parent / "fixtures"

# Four rows in XCOPA's raw JSONL format, so that --limit 2 has rows to leave out.
XCOPA = [
    ("Kadın çok yoruldu.", "Erkenden uyudu.", "Dans etmeye gitti.", "effect", 0),
    ("Yerler ıslaktı.", "Güneş parladı.", "Gece yağmur yağdı.", "cause", 1),
    ("Elektrik kesildi.", "Işıklar söndü.", "İnsanlar güldü.", "effect", 0),
    ("Öğrenci sınavı kazandı.", "Çok çalışmıştı.", "Kalemini kaybetmişti.", "cause", 0),
]


def test_bench_with_a_limit_writes_lm_evals_json_a_table_and_a_chart(tmp_path, model_dir):
    xcopa = tmp_path / "xcopa_tr.jsonl"
    keys = ("premise", "choice1", "choice2", "question", "label")
    xcopa.write_text(
        "".join(
            json.dumps(dict(zip(keys, r, strict=True)), ensure_ascii=False) + "\n" for r in XCOPA
        ),
        encoding="utf-8",
    )
    result = run_bench(
        str(model_dir),
        output_dir=tmp_path / "bench",
        tasks=["xcopa_tr", "ironytr"],
        data_files=[f"xcopa_tr={xcopa}", f"ironytr={FIXTURES / 'ironytr.jsonl'}"],
        limit=2,
        mc_num=2,
        batch_size=8,
        name="tiny",
    )
    data = json.loads(result.files["results"].read_text(encoding="utf-8"))
    assert set(data["results"]) == {"xcopa_tr", "ironytr"}
    assert data["n-samples"]["xcopa_tr"]["effective"] == 2
    assert data["config"]["limit"] == 2
    assert {"acc,none", "acc_norm,none", "f1,none"} <= set(data["results"]["ironytr"])
    table = result.files["table"].read_text(encoding="utf-8")
    assert table.splitlines()[0].startswith("| task | tiny | Diffutron 1st-stage")
    xcopa = 100 * data["results"]["xcopa_tr"]["acc,none"]
    assert f"| XCOPA_TR | {xcopa:.2f} | 53.80 |" in table
    assert "| IronyTR |" in table and "| STS_TR |" not in table
    assert "at most 2 examples per task" in table
    assert result.files["chart"].read_bytes()[:4] == b"\x89PNG"


def test_bench_input_errors_are_one_line(tmp_path, model_dir):
    with pytest.raises(EvalError, match="--limit must be at least 1"):
        run_bench(str(model_dir), output_dir=tmp_path, limit=0)
    with pytest.raises(EvalError, match="offline and no --data-files for belebele_tr"):
        run_bench(str(model_dir), output_dir=tmp_path, tasks=["belebele_tr"])
    with pytest.raises(EvalError, match="--baseline 'gpt2': write hf:MODEL_ID"):
        run_bench(str(model_dir), output_dir=tmp_path, baseline="gpt2")


def test_a_model_dir_that_is_not_a_masked_lm_is_refused(tmp_path, bert_tokenizer):
    from transformers import GPT2Config, GPT2LMHeadModel

    folder = tmp_path / "gpt2"
    GPT2LMHeadModel(
        GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=len(bert_tokenizer))
    ).save_pretrained(folder)
    bert_tokenizer.save_pretrained(folder)
    with pytest.raises(EvalError, match="cannot load directory"):
        DiffutronLM(str(folder))
