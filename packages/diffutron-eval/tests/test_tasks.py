"""Each CETVEL task renders its documented prompt, choices and target
(docs/evaluation.md#task-definitions).

The tasks run on small files in each task's raw format: the fixtures/ folder, and for exams_tr,
sts_tr and xcopa_tr rows written here. The real CETVEL dev files of those three run when the
shared data folder holds them (``cetvel_dev`` skips otherwise).
"""

import csv
import json
from pathlib import Path

import pytest

from diffutron_eval import EvalError, suites
from diffutron_eval.tasks import (
    TASKS,
    parse_data_files,
    task_configs,
    task_manager,
    tasks_path,
)

FIXTURES = Path(__file__).parent / "fixtures"

# exams_tr as EXAMS' raw JSONL: choices a list of {text, label}; the second row has five.
EXAMS = [
    {
        "id": "tr-1",
        "question": {
            "stem": "Türkiye'nin başkenti hangi şehirdir?",
            "choices": [
                {"text": "İstanbul", "label": "A"},
                {"text": "Ankara", "label": "B"},
                {"text": "İzmir", "label": "C"},
                {"text": "Bursa", "label": "D"},
            ],
        },
        "answerKey": "B",
    },
    {
        "id": "tr-2",
        "question": {
            "stem": "Deniz seviyesinde su kaç santigrat derecede kaynar?",
            "choices": [
                {"text": "0", "label": "A"},
                {"text": "50", "label": "B"},
                {"text": "90", "label": "C"},
                {"text": "100", "label": "D"},
                {"text": "120", "label": "E"},
            ],
        },
        "answerKey": "D",
    },
]
# sts_tr as STS-B-TR's raw CSV (header score,sentence1_tr,sentence2_tr); one sentence has a comma.
STS = [
    ("5.0", "Bir kadın gitar çalıyor.", "Bir kadın gitar çalıyor."),
    ("0.25", "Bir adam yemek pişiriyor.", "Kedi ağaca tırmanıyor."),
    ("2.6", "Çocuklar parkta, top oynuyor.", "Çocuklar bahçede koşuyor."),
]
# xcopa_tr as XCOPA's raw JSONL: an effect, a cause, and choices that start with I and İ.
XCOPA = [
    {
        "premise": "Kadın çok yoruldu.",
        "choice1": "Erkenden uyudu.",
        "choice2": "Dans etmeye gitti.",
        "question": "effect",
        "label": 0,
    },
    {
        "premise": "Yerler ıslaktı.",
        "choice1": "Güneş parladı.",
        "choice2": "Gece yağmur yağdı.",
        "question": "cause",
        "label": 1,
    },
    {
        "premise": "Elektrik kesildi.",
        "choice1": "Işıklar söndü.",
        "choice2": "İnsanlar güldü.",
        "question": "effect",
        "label": 0,
    },
]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cetvel")
    sts = folder / "sts_tr.csv"
    with sts.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([("score", "sentence1_tr", "sentence2_tr"), *STS])
    return {
        "belebele_tr": FIXTURES / "belebele_tr.jsonl",
        "exams_tr": write_jsonl(folder / "exams_tr.jsonl", EXAMS),
        "ironytr": FIXTURES / "ironytr.jsonl",
        "news_cat": FIXTURES / "news_cat.jsonl",
        "mnli_tr": FIXTURES / "mnli_tr.jsonl",
        "sts_tr": sts,
        "xcopa_tr": write_jsonl(folder / "xcopa_tr.jsonl", XCOPA),
    }


def build(files):
    from lm_eval.tasks import get_task_dict

    manager = task_manager()
    pairs = [f"{task}={path}" for task, path in files.items()]
    tasks = get_task_dict(task_configs(list(files), parse_data_files(pairs), manager), manager)
    return {name: task for name, task in tasks.items()}


@pytest.fixture(scope="module")
def built(files):
    return build(files)


@pytest.fixture(scope="module")
def dev_files(cetvel_dev):
    return {
        "exams_tr": cetvel_dev / "exams_tr.train.jsonl",
        "sts_tr": cetvel_dev / "sts_tr.dev.csv",
        "xcopa_tr": cetvel_dev / "xcopa_tr.val.jsonl",
    }


@pytest.fixture(scope="module")
def built_dev(dev_files):
    return build(dev_files)


def docs(task):
    return list(task.test_docs() if task.has_test_docs() else task.validation_docs())


def rendered(task, doc=None):
    doc = docs(task)[0] if doc is None else doc
    return task.doc_to_text(doc), task.doc_to_choice(doc), task.doc_to_target(doc)


def rendered_all(task):
    return [rendered(task, doc) for doc in docs(task)]


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


def test_exams_on_a_raw_file(built):
    assert rendered_all(built["exams_tr"]) == [
        ("Türkiye'nin başkenti hangi şehirdir?", ["İstanbul", "Ankara", "İzmir", "Bursa"], 1),
        (
            "Deniz seviyesinde su kaç santigrat derecede kaynar?",
            ["0", "50", "90", "100", "120"],
            3,
        ),
    ]


def test_exams_on_the_real_dev_file(built_dev, dev_files):
    lines = dev_files["exams_tr"].read_text(encoding="utf-8").splitlines()
    raw = json.loads(lines[0])
    text, choices, target = rendered(built_dev["exams_tr"])
    assert text == raw["question"]["stem"]
    assert choices == [c["text"] for c in raw["question"]["choices"]]
    assert target == [c["label"] for c in raw["question"]["choices"]].index(raw["answerKey"])
    assert len(docs(built_dev["exams_tr"])) == len(lines) == 1571


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


def sts_prompt(first: str, second: str) -> str:
    return (
        f'Aşağıda iki cümle verilmektedir:\n\nCümle 1: "{first}"\nCümle 2: "{second}"\n\n'
        "Bu iki cümle arasında ne kadar benzerlik vardır:"
    )


def test_sts_on_a_raw_csv(built):
    got = rendered_all(built["sts_tr"])
    assert [text for text, _, _ in got] == [sts_prompt(a, b) for _, a, b in STS]
    assert [target for _, _, target in got] == [5, 0, 3]  # scores 5.0, 0.25, 2.6
    choices = got[0][1]
    assert len(choices) == 6
    assert choices[0] == "Benzerlik Yok" and choices[-1] == "Mantıksal Olarak Aynı"
    from diffutron_eval.lm_tasks import utils

    bins = [utils.sts_target({"score": s}) for s in (0.0, 0.49, 0.5, 1.5, 2.49, 3.5, 4.49, 4.5)]
    assert bins == [0, 0, 1, 2, 2, 4, 4, 5]


def test_sts_on_the_real_dev_csv(built_dev):
    text, choices, target = rendered(built_dev["sts_tr"])
    assert text == sts_prompt(
        "Şapkalı bir adam dans ediyor.", "Sert şapka takan bir adam dans ediyor."
    )
    assert choices[0] == "Benzerlik Yok" and choices[-1] == "Mantıksal Olarak Aynı"
    assert target == 5  # score 5.0
    assert len(docs(built_dev["sts_tr"])) == 1500


def test_xcopa_on_a_raw_file(built):
    assert rendered_all(built["xcopa_tr"]) == [
        ("Kadın çok yoruldu bu yüzden", ["erkenden uyudu.", "dans etmeye gitti."], 0),
        ("Yerler ıslaktı çünkü", ["güneş parladı.", "gece yağmur yağdı."], 1),
        ("Elektrik kesildi bu yüzden", ["işıklar söndü.", "i̇nsanlar güldü."], 0),  # str.lower
    ]


def test_xcopa_on_the_real_dev_file(built_dev):
    text, choices, target = rendered(built_dev["xcopa_tr"])
    assert text == "Adam musluğu açtı bu yüzden"
    assert choices == ["tuvalet su ile dolu.", "musluktan su aktı."] and target == 1
    assert len(docs(built_dev["xcopa_tr"])) == 100


def test_xcopa_casing_is_cetvels_unless_turkish_casing_is_asked(monkeypatch):
    from diffutron_eval.lm_tasks import utils

    doc = {"choice1": "Işık söndü.", "choice2": "İnsanlar güldü."}
    assert utils.xcopa_choices(doc) == ["işık söndü.", "i̇nsanlar güldü."]  # str.lower
    monkeypatch.setenv("DIFFUTRON_TURKISH_CASING", "1")
    assert utils.xcopa_choices(doc) == ["ışık söndü.", "insanlar güldü."]


def test_bad_task_input_is_one_line(tmp_path, files):
    with pytest.raises(EvalError, match="unknown task\\(s\\) xnli_tr; known: belebele_tr"):
        suites.resolve(None, ["xnli_tr"])
    assert suites.resolve(None, ["diffutron_cetvel"]) == list(TASKS)
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
