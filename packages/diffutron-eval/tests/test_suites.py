"""The Turkish suites: TurBLiMP, MultiBLiMP and TurkishMMLU through bench, their accuracies equal to
the library's on the same pairs, their files checked, their table, chart and report page."""

import csv
import json

import pytest

from diffutron_eval import EvalError, pair_accuracy, run_bench, sentence_scores, suites
from diffutron_eval.turkish_tasks import PHENOMENA, TURBLIMP, TURKISHMMLU, repository_names
from diffutron_sample import load_model


def library_accuracy(model_dir, pairs, method="pll-word-l2r") -> float:
    model, tokenizer = load_model(str(model_dir), device="cpu")
    good = sentence_scores(model, tokenizer, [g for g, _ in pairs], method=method)
    bad = sentence_scores(model, tokenizer, [b for _, b in pairs], method=method)
    return pair_accuracy(good, bad)


def test_grammar_accuracies_equal_the_library_on_the_same_pairs(model_dir, grammar, grammar_bench):
    made, _ = grammar
    result, out = grammar_bench
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))["results"]
    assert set(made) <= set(results)
    for task, pairs in made.items():
        expected = library_accuracy(model_dir, pairs)
        assert results[task]["acc,none"] == pytest.approx(expected, abs=1e-12), task
        assert result.accuracy[next(iter(result.accuracy))][task] == pytest.approx(100 * expected)


def test_grammar_writes_its_table_chart_and_report(grammar, grammar_bench):
    made, _ = grammar
    result, out = grammar_bench
    table = (out / "table.md").read_text(encoding="utf-8")
    assert "## Grammar: TurBLiMP and MultiBLiMP (Turkish)" in table and "## CETVEL" not in table
    assert (
        "| binding |" in table and "| passives |" in table and "| MultiBLiMP (Turkish) |" in table
    )
    assert "| **Average (TurBLiMP)** |" in table and "`auto`" in table
    assert (out / "chart.png").read_bytes()[:4] == b"\x89PNG"
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "http://" not in page and "https://" not in page  # nothing to fetch
    for task in made:
        assert f'id="worst-{task}"' in page
    for task, worst in result.worst.items():
        margins = [p["margin"] for p in worst]
        assert margins == sorted(margins, reverse=True) and all(m > 0 for m in margins)
        goods = {g for g, _ in made[task]}
        assert all(p["good"] in goods for p in worst), task


def test_the_real_turblimp_files_give_the_library_accuracy(
    tmp_path, trained_model_dir, turblimp_dir
):
    model_dir = trained_model_dir
    files = [f"turblimp={turblimp_dir}"]
    with pytest.raises(EvalError, match="pass --drop-equal-pairs to leave out its 10 such pair"):
        run_bench(str(model_dir), output_dir=tmp_path / "no", tasks=["turblimp"], data_files=files)
    out = tmp_path / "bench"
    result = run_bench(
        str(model_dir), output_dir=out, tasks=["turblimp"], data_files=files, limit=6,
        batch_size=64, device="cpu", drop_equal_pairs=True,
    )  # fmt: skip
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))["results"]
    assert set(TURBLIMP) <= set(results)
    for task in TURBLIMP:
        with (turblimp_dir / repository_names(task)[0]).open(encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle, delimiter=";"))
        pairs = [(r["good_sentence"], r["bad_sentence"]) for r in rows]
        pairs = [(g, b) for g, b in pairs if g.strip() != b.strip()][:6]  # as dropped, then limited
        assert results[task]["acc,none"] == pytest.approx(library_accuracy(model_dir, pairs)), task
    assert len(result.worst) == len(PHENOMENA)
    table = (out / "table.md").read_text(encoding="utf-8")
    assert "(--drop-equal-pairs): turblimp_anaphor_agreement 10, turblimp_quantifiers 10." in table
    assert table.startswith("## Grammar: TurBLiMP\n")  # MultiBLiMP did not run


def test_turkishmmlu_runs_from_a_local_file(tmp_path, model_dir):
    rows = [
        {"question": "Hücrenin enerji santrali hangisidir?", "answer": "B",
         "choices": ["Çekirdek", "Mitokondri", "Ribozom", "Koful", "Lizozom"]},
        {"question": "Fotosentez nerede gerçekleşir?", "answer": "A",
         "choices": ["Kloroplast", "Çekirdek", "Zar", "Koful", "Ribozom"]},
    ]  # fmt: skip
    data = tmp_path / "Biology.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    out = tmp_path / "bench"
    run_bench(
        str(model_dir), output_dir=out, tasks=["turkishmmlu_biology"],
        data_files=[f"turkishmmlu_biology={data}"], mc_num=4, batch_size=16, device="cpu",
    )  # fmt: skip
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))["results"]
    assert 0 <= results["turkishmmlu_biology"]["acc,none"] <= 1
    table = (out / "table.md").read_text(encoding="utf-8")
    assert "## Knowledge: TurkishMMLU" in table and "| Biology |" in table
    assert "report.html" in {p.name for p in out.iterdir()}


def test_suites_name_their_tasks():
    assert suites.resolve("grammar", None) == [*TURBLIMP, "multiblimp_tur"]
    assert suites.resolve("knowledge", None) == list(TURKISHMMLU)
    assert suites.resolve(None, None) == list(suites.SUITES["cetvel"])
    assert len(suites.resolve("turkish", None)) == 7 + 16 + 1 + 9
    assert suites.resolve(None, ["turblimp", "xcopa_tr"]) == ["xcopa_tr", *TURBLIMP]
    with pytest.raises(EvalError, match="unknown suite 'grammer'; choose one of cetvel"):
        suites.resolve("grammer", None)
    with pytest.raises(EvalError, match="unknown task"):
        suites.resolve(None, ["turblimp_syntax"])


BAD = {
    "nocolumn.csv": ("good;bad\nA b c.;B a c.\n", "lacks column(s) sentence_good, sentence_bad"),
    "emptybad.csv": ("good_sentence;bad_sentence\nKedi süt içer.; \n", "sentence_bad must be a"),
    "same.csv": ("good_sentence;bad_sentence\nKedi süt.;Kedi süt.\n", "bad sentence are the same"),
    "comma.csv": (
        "good_sentence,bad_sentence\nKedi süt içer.,Süt kedi içer.\n",
        "its header is separated by ',', but these files are separated by ';'",
    ),
    "empty.csv": ("good_sentence;bad_sentence\n", "has no rows"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_turblimp_files_are_one_line(tmp_path, name):
    text, expected = BAD[name]
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(EvalError, match=expected.replace("(", r"\(").replace(")", r"\)")) as err:
        suites.parse_data_files([f"turblimp_binding={path}"])
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_a_non_utf8_turblimp_file_and_an_incomplete_folder_are_one_line(tmp_path, kit):
    latin = tmp_path / "latin1.csv"
    latin.write_bytes(
        "good_sentence;bad_sentence\nKedi süt içer.;Süt kedi içer.\n".encode("latin-1")
    )
    with pytest.raises(EvalError, match="not valid UTF-8"):
        suites.parse_data_files([f"turblimp_binding={latin}"])
    folder = tmp_path / "turblimp"
    folder.mkdir()
    kit.write_turblimp(folder / "augmented_binding.csv", [("Kedi süt içer.", "Süt kedi içer.")])
    with pytest.raises(EvalError, match=r"lacks augmented_anaphor_agreement\.csv"):
        suites.parse_data_files([f"turblimp={folder}"])
