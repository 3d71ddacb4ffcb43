"""Each CETVEL task renders its documented prompt, choices and target (REFERENCE section 6)."""

import json
from pathlib import Path

import pytest

from diffutron_eval import EvalError
from diffutron_eval.tasks import (
    TASKS,
    parse_data_files,
    resolve_tasks,
    task_configs,
    task_manager,
    tasks_path,
)

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def files(kit):
    dev = kit.cetvel_dev
    return {
        "belebele_tr": FIXTURES / "belebele_tr.jsonl",
        "exams_tr": dev / "exams_tr.train.jsonl",
        "ironytr": FIXTURES / "ironytr.jsonl",
        "news_cat": FIXTURES / "news_cat.jsonl",
        "mnli_tr": FIXTURES / "mnli_tr.jsonl",
        "sts_tr": dev / "sts_tr.dev.csv",
        "xcopa_tr": dev / "xcopa_tr.val.jsonl",
    }


@pytest.fixture(scope="module")
def built(files):
    from lm_eval.tasks import get_task_dict

    manager = task_manager()
    pairs = [f"{task}={path}" for task, path in files.items()]
    tasks = get_task_dict(task_configs(list(TASKS), parse_data_files(pairs), manager), manager)
    return {name: task for name, task in tasks.items()}


def first(task):
    docs = task.test_docs() if task.has_test_docs() else task.validation_docs()
    return next(iter(docs))


def rendered(task):
    doc = first(task)
    return task.doc_to_text(doc), task.doc_to_choice(doc), task.doc_to_target(doc)


def test_every_task_is_ours_and_loads_from_a_local_file(built):
    assert sorted(built) == sorted(TASKS)
    for task in built.values():
        assert task.config.dataset_kwargs["data_files"]  # not the Hub


def test_belebele(built):
    text, choices, target = rendered(built["belebele_tr"])
    assert text == (
        "P: Ankara, Türkiye'nin başkentidir.\nQ: Türkiye'nin başkenti neresidir?\n"
        "A: İstanbul\nB: Ankara\nC: İzmir\nD: Bursa\nAnswer:"
    )
    assert choices == ["A", "B", "C", "D"] and target == 1


def test_exams_on_the_raw_dev_file(built, files):
    raw = json.loads(files["exams_tr"].read_text(encoding="utf-8").splitlines()[0])
    text, choices, target = rendered(built["exams_tr"])
    assert text == raw["question"]["stem"]
    assert choices == [c["text"] for c in raw["question"]["choices"]]
    assert target == [c["label"] for c in raw["question"]["choices"]].index(raw["answerKey"])


def test_exams_falls_back_to_index_3_when_the_key_is_missing():
    from diffutron_eval.lm_tasks import utils

    doc = {"question": {"choices": {"label": ["A", "B", "C", "D"]}}, "answerKey": "E"}
    assert utils.exams_target(doc) == 3


def test_ironytr(built):
    text, choices, target = rendered(built["ironytr"])
    assert text == "Cümle: Harika, yine yağmur yağıyor.\nSoru: Bu cümlede ironi var mı?\n"
    assert choices == ["Hayır", "Evet"] and target == 1
    assert [m["metric"] for m in built["ironytr"].config.metric_list] == ["acc", "acc_norm", "f1"]


def test_news_cat(built):
    text, choices, target = rendered(built["news_cat"])
    assert text == "Cümle: Takım dün akşam şampiyon oldu.\nSoru: Bu cümlenin konusu nedir?\n Cevap:"
    assert choices == ["spor", "magazin", "siyaset", "sağlık", "ekonomi"] and target == 0
    from diffutron_eval.lm_tasks import utils

    assert utils.news_target({"label": "economy"}) == 4
    # macro F1: classes 0 and 1 each half right -> (2/3 + 0) / 2 ... computed by sklearn, locally
    assert utils.macro_f1([(0, 0), (1, 0), (1, 1), (2, 2)]) == pytest.approx(
        (2 / 3 + 2 / 3 + 1) / 3
    )


def test_mnli(built):
    text, choices, target = rendered(built["mnli_tr"])
    assert text == (
        'Aşağıda iki cümle verilmektedir:\n\nCümle 1: "Adam koşuyor."\n'
        'Cümle 2: "Adam hareket ediyor."\n\nBu iki cümle arasındaki ilişki nedir:'
    )
    assert choices == ["TUTARLI", "ALAKASIZ", "ÇELİŞKİLİ"] and target == 0


def test_sts_on_the_raw_dev_csv(built):
    text, choices, target = rendered(built["sts_tr"])
    assert text == (
        'Aşağıda iki cümle verilmektedir:\n\nCümle 1: "Şapkalı bir adam dans ediyor."\n'
        'Cümle 2: "Sert şapka takan bir adam dans ediyor."\n\n'
        "Bu iki cümle arasında ne kadar benzerlik vardır:"
    )
    assert choices[0] == "Benzerlik Yok" and choices[-1] == "Mantıksal Olarak Aynı"
    assert target == 5  # score 5.0
    from diffutron_eval.lm_tasks import utils

    bins = [utils.sts_target({"score": s}) for s in (0.0, 0.49, 0.5, 1.5, 2.49, 3.5, 4.49, 4.5)]
    assert bins == [0, 0, 1, 2, 2, 4, 4, 5]


def test_xcopa_on_the_dev_file(built):
    text, choices, target = rendered(built["xcopa_tr"])
    assert text == "Adam musluğu açtı bu yüzden"
    assert choices == ["tuvalet su ile dolu.", "musluktan su aktı."] and target == 1


def test_xcopa_casing_is_cetvels_unless_turkish_casing_is_asked(monkeypatch):
    from diffutron_eval.lm_tasks import utils

    doc = {"choice1": "Işık söndü.", "choice2": "İnsanlar güldü."}
    assert utils.xcopa_choices(doc) == ["işık söndü.", "i̇nsanlar güldü."]  # str.lower
    monkeypatch.setenv("DIFFUTRON_TURKISH_CASING", "1")
    assert utils.xcopa_choices(doc) == ["ışık söndü.", "insanlar güldü."]


def test_bad_task_input_is_one_line(tmp_path, files):
    with pytest.raises(EvalError, match="unknown task\\(s\\) xnli_tr; known: belebele_tr"):
        resolve_tasks(["xnli_tr"])
    assert resolve_tasks(["diffutron_cetvel"]) == list(TASKS)
    bad = tmp_path / "x.jsonl"
    bad.write_text(json.dumps({"premise": "a", "choice1": "b"}) + "\n", encoding="utf-8")
    with pytest.raises(EvalError, match="lacks column\\(s\\) choice2, question, label"):
        parse_data_files([f"xcopa_tr={bad}"])
    empty = tmp_path / "e.csv"
    empty.write_text("score,sentence1,sentence2\n", encoding="utf-8")
    with pytest.raises(EvalError, match="has no rows"):
        parse_data_files([f"sts_tr={empty}"])
    with pytest.raises(EvalError, match="write TASK=PATH"):
        parse_data_files([str(files["sts_tr"])])


def test_the_include_path_holds_the_group_and_wins_over_builtins():
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=str(tasks_path()))  # with lm-eval's own tasks
    assert str(manager.task_index["xcopa_tr"].yaml_path).startswith(str(tasks_path()))
    assert "diffutron_cetvel" in manager.all_groups
